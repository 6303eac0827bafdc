"""The durable job queue in the platform database.

Every asynchronous invocation is a row in `jobs`: a database event, later a scheduled
run or an asynchronous HTTP call. The row's id is the event id, so enqueueing the
same event twice is a no-op. A node claims due jobs with a lease (`locked_until`)
that it keeps extending while they run; a node that dies stops extending, and its
jobs go back to the queue when the lease expires.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from wasmlet.store.base import Store

Clock = Callable[[], float]


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    DEAD = "dead"


@dataclass(frozen=True, slots=True)
class Job:
    id: str
    function_name: str
    trigger_kind: str
    payload: bytes
    attempts: int
    created_at: float


@dataclass(frozen=True, slots=True)
class NewJob:
    id: str
    function_name: str
    trigger_kind: str
    payload: bytes
    run_at: float | None = None


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
            )
            for row in rows
        ]

    def complete(self, job_id: str) -> None:
        self._store.execute("complete_job", id=job_id, node=self.node, now=self._clock())

    def fail(self, job_id: str, error_type: str, error: str) -> None:
        self._store.execute(
            "fail_job",
            id=job_id,
            node=self.node,
            error_type=error_type,
            error=error,
            now=self._clock(),
        )

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
