"""The durable job queue in the platform database.

Every asynchronous invocation is a row in `jobs`: a database event, a scheduled run
or an asynchronous HTTP call. A database event's row id is the event id and a
scheduled run's is its schedule and time, so enqueueing the same one twice is a no-op;
an asynchronous HTTP call gets a fresh id of its own (never one a caller chose).
A node claims due jobs with a lease (`locked_until`) that it keeps extending while
they run; a node that dies stops extending, and its jobs go back to the queue when the
lease expires.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from wasmlet.store.base import Store

Clock = Callable[[], float]
HTTP_ASYNC = "http_async"


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    DEAD = "dead"


class DeadReason(StrEnum):
    NON_RETRIABLE = "non_retriable"
    MAX_RETRIES_EXCEEDED = "max_retries_exceeded"


@dataclass(frozen=True, slots=True)
class Job:
    id: str
    function_name: str
    trigger_kind: str
    payload: bytes
    attempts: int
    created_at: float
    request_meta: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class NewJob:
    id: str
    function_name: str
    trigger_kind: str
    payload: bytes
    run_at: float | None = None
    request_meta: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class DeadLetterFilter:
    id: str | None = None
    function: str | None = None
    error_type: str | None = None

    def params(self) -> dict[str, str | None]:
        return {"id": self.id, "function": self.function, "error_type": self.error_type}


class JobQueue:
    def __init__(self, store: Store, node: str, clock: Clock, lease_s: float = 30.0) -> None:
        self._store = store
        self.node = node
        self._clock = clock
        self.lease_s = lease_s

    def enqueue(self, jobs: list[NewJob]) -> None:
        now = self._clock()
        with self._store.transaction():
            for job in jobs:
                self._store.execute(
                    "enqueue_job",
                    id=job.id,
                    function_name=job.function_name,
                    trigger_kind=job.trigger_kind,
                    payload=job.payload,
                    request_meta=json.dumps(job.request_meta) if job.request_meta else None,
                    run_at=job.run_at if job.run_at is not None else now,
                    now=now,
                )

    def claim(self, limit: int) -> list[Job]:
        if limit <= 0:
            return []
        now = self._clock()
        with self._store.transaction():
            rows = self._store.fetch_all(
                "claim_jobs", node=self.node, until=now + self.lease_s, now=now, limit=limit
            )
        return [
            Job(
                id=row["id"],
                function_name=row["function_name"],
                trigger_kind=row["trigger_kind"],
                payload=bytes(row["payload"]),
                attempts=int(row["attempts"]),
                created_at=float(row["created_at"]),
                request_meta=json.loads(row["request_meta"]) if row["request_meta"] else None,
            )
            for row in rows
        ]

    def complete(
        self, job_id: str, *, version: int | None, result_status: int, result_body: bytes
    ) -> None:
        self._store.execute(
            "complete_job",
            id=job_id,
            node=self.node,
            version=version,
            result_status=result_status,
            result_body=result_body,
            now=self._clock(),
        )

    def retry(
        self, job_id: str, *, delay_s: float, error_type: str, error: str, version: int | None
    ) -> None:
        """A failed attempt with retries left: due again after `delay_s` (persisted)."""
        now = self._clock()
        self._store.execute(
            "retry_job",
            id=job_id,
            node=self.node,
            run_at=now + delay_s,
            error_type=error_type,
            error=error,
            version=version,
            now=now,
        )

    def bury(
        self,
        job_id: str,
        *,
        reason: DeadReason,
        error_type: str,
        error: str,
        version: int | None,
        result_status: int | None = None,
    ) -> None:
        """Into the dead letter queue."""
        self._store.execute(
            "bury_job",
            id=job_id,
            node=self.node,
            reason=str(reason),
            error_type=error_type,
            error=error,
            version=version,
            result_status=result_status,
            now=self._clock(),
        )

    def next_due(self) -> float | None:
        row = self._store.fetch_one("next_due_job")
        return float(row["run_at"]) if row and row["run_at"] is not None else None

    def get(self, job_id: str) -> dict[str, Any] | None:
        return self._store.fetch_one("get_job", id=job_id)

    def dead_letters(
        self, where: DeadLetterFilter, *, limit: int = 100, offset: int = 0
    ) -> tuple[list[dict[str, Any]], int]:
        params = where.params()
        params.pop("id")
        rows = self._store.fetch_all("list_dead", limit=limit, offset=offset, **params)
        total = self._store.fetch_one("count_dead", **params)
        return rows, int(total["n"]) if total else 0

    def redrive(self, where: DeadLetterFilter) -> int:
        """Dead letters back to the queue with a fresh retry budget; how many."""
        return self._store.execute("redrive_dead", now=self._clock(), **where.params())

    def purge(self, where: DeadLetterFilter) -> int:
        return self._store.execute("purge_dead", **where.params())

    def release(self, job_id: str, delay_s: float) -> None:
        """Back to the queue without counting the attempt (it never ran)."""
        now = self._clock()
        self._store.execute("release_job", id=job_id, node=self.node, run_at=now + delay_s, now=now)

    def extend_leases(self) -> None:
        self._store.execute("extend_leases", node=self.node, until=self._clock() + self.lease_s)

    def requeue_expired(self) -> int:
        return self._store.execute("requeue_expired", now=self._clock())

    def requeue_all_running(self) -> int:
        """For a single-node store at start-up: nothing else can be running them."""
        return self._store.execute("requeue_all_running", now=self._clock())

    def counts(self) -> dict[str, int]:
        return {row["status"]: int(row["n"]) for row in self._store.fetch_all("count_jobs")}

    def status_of(self, job_id: str) -> JobStatus | None:
        row = self._store.fetch_one("get_job", id=job_id)
        return JobStatus(row["status"]) if row else None
