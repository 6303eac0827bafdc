"""The durable job queue in the platform database.

Every asynchronous invocation is a row in `jobs`: a database event, a scheduled run
or an asynchronous HTTP call. A database event's row id is the event id and a
scheduled run's is its schedule and time, so enqueueing the same one twice is a no-op;
an asynchronous HTTP call gets a fresh id of its own (never one a caller chose).
A node claims due jobs with a lease (`locked_until`) that it keeps extending for the
jobs it is still running; a node that dies (or loses track of a job) stops extending,
and the job goes back to the queue when the lease expires. How an attempt ended
(`complete`, `retry`, `bury`, `release`) lands while the node holds the job, or late
while no other node has claimed it since; each says whether it landed.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from wasmlet.store.base import Store

Clock = Callable[[], float]
HTTP_ASYNC = "http_async"
NO_ATTEMPT = -1  # an ending written without the attempt it ends lands only under the lease


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
    order_key: str | None = None  # jobs of one key run one at a time, in order_seq order
    order_seq: int | None = None


@dataclass(frozen=True, slots=True)
class DeadLetterFilter:
    id: str | None = None
    function: str | None = None
    error_type: str | None = None

    def params(self) -> dict[str, str | None]:
        return {"id": self.id, "function": self.function, "error_type": self.error_type}


@dataclass(frozen=True, slots=True)
class End:
    """One job's end as a statement, for `JobQueue.write_ends`."""

    query: str
    params: dict[str, Any]


class JobQueue:
    def __init__(self, store: Store, node: str, clock: Clock, lease_s: float = 30.0) -> None:
        self._store = store
        self.node = node
        self._clock = clock
        self.lease_s = lease_s

    def enqueue(self, jobs: list[NewJob]) -> None:
        """In one transaction (one round trip on PostgreSQL); an id already there is kept."""
        if not jobs:
            return
        now = self._clock()
        self._store.execute_each(
            [
                (
                    "enqueue_job",
                    {
                        "id": job.id,
                        "function_name": job.function_name,
                        "trigger_kind": job.trigger_kind,
                        "payload": job.payload,
                        "request_meta": json.dumps(job.request_meta) if job.request_meta else None,
                        "run_at": job.run_at if job.run_at is not None else now,
                        "now": now,
                        "order_key": job.order_key,
                        "order_seq": job.order_seq,
                    },
                )
                for job in jobs
            ]
        )

    def relays_outbox_of(self, database: object) -> bool:
        """Whether the outbox of `database` is beside this queue (PostgreSQL, same schema),
        so `relay_outbox` moves it in one statement."""
        return (
            self._store.dialect == "postgres"
            and getattr(database, "dialect", None) == "postgres"
            and getattr(database, "schema", None) == getattr(self._store, "schema", None)
        )

    def relay_outbox(self, limit: int) -> int:
        """Captured changes from the outbox beside the queue into jobs; how many moved."""
        now = self._clock()
        row = self._store.fetch_one("relay_outbox", limit=limit, now=now)
        return int(row["moved"]) if row else 0

    def claim(
        self, limit: int, skip: Collection[str] = (), caps: Mapping[str, int] | None = None
    ) -> list[Job]:
        """Due jobs, up to `limit`, leased to this node; none of the functions in `skip`,
        and at most `caps[name]` of a function named in `caps` (its free slots)."""
        if limit <= 0:
            return []
        caps = caps or {}
        full = {name for name, room in caps.items() if room <= 0}
        room = {name: min(n, limit) for name, n in caps.items() if n > 0}
        now = self._clock()
        params: dict[str, Any] = {"skip": _names({*skip, *full})}
        if room:  # the plain statement when no function is capped: it costs less
            params["caps"] = json.dumps(room, sort_keys=True)
        rows = self._store.fetch_all(
            "claim_jobs_capped" if room else "claim_jobs", node=self.node,
            until=now + self.lease_s, now=now, limit=limit, **params,
        )  # fmt: skip
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
        self,
        job_id: str,
        *,
        version: int | None,
        result_status: int,
        result_body: bytes,
        attempt: int = NO_ATTEMPT,
    ) -> bool:
        return self._ended(
            "complete_job",
            id=job_id,
            attempt=attempt,
            version=version,
            result_status=result_status,
            result_body=result_body,
            now=self._clock(),
        )

    def retry(
        self,
        job_id: str,
        *,
        delay_s: float,
        error_type: str,
        error: str,
        version: int | None,
        attempt: int = NO_ATTEMPT,
    ) -> bool:
        """A failed attempt with retries left: due again after `delay_s` (persisted)."""
        now = self._clock()
        return self._ended(
            "retry_job",
            id=job_id,
            attempt=attempt,
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
        attempt: int = NO_ATTEMPT,
    ) -> bool:
        """Into the dead letter queue."""
        return self._ended(
            "bury_job",
            id=job_id,
            attempt=attempt,
            reason=str(reason),
            error_type=error_type,
            error=error,
            version=version,
            result_status=result_status,
            now=self._clock(),
        )

    def next_due(self, skip: Collection[str] = ()) -> float | None:
        row = self._store.fetch_one("next_due_claimable", skip=_names(skip))
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

    def release(self, job_id: str, delay_s: float, *, attempt: int = NO_ATTEMPT) -> bool:
        """Back to the queue without counting the attempt (it never ran)."""
        now = self._clock()
        return self._ended("release_job", id=job_id, attempt=attempt, run_at=now + delay_s, now=now)

    def _ended(self, query: str, **params: Any) -> bool:
        return self._store.execute(query, node=self.node, **params) > 0

    def plan(self, write: Callable[[JobQueue], bool]) -> End:
        """The end `write(queue)` would write (`complete`, `retry`, ...), not written: for
        `write_ends`."""
        planner = _Planner(self._store, self.node, self._clock, self.lease_s)
        write(planner)
        assert planner.planned is not None, "write(queue) must call one ending method"
        return planner.planned

    def write_ends(self, ends: Sequence[End]) -> list[bool]:
        """Several ends (`plan`) in one transaction, one round trip on PostgreSQL; whether
        each landed. Each is conditional on this node's hold on its job, as one alone is;
        an error lands none of them."""
        counts = self._store.execute_each(
            [(end.query, {**end.params, "node": self.node}) for end in ends]
        )
        return [count > 0 for count in counts]

    def extend_leases(self, job_ids: Collection[str]) -> None:
        """Renew the leases of these jobs, the ones this node is still running."""
        until = self._clock() + self.lease_s
        if job_ids:
            self._store.execute_many(
                "extend_lease", [{"id": i, "node": self.node, "until": until} for i in job_ids]
            )

    def prune_done(self, cutoff: float, limit: int) -> int:
        """Delete up to `limit` done jobs finished before `cutoff`; how many."""
        return max(0, self._store.execute("prune_done_jobs", cutoff=cutoff, limit=limit))

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


class _Planner(JobQueue):
    planned: End | None = None

    def _ended(self, query: str, **params: Any) -> bool:
        self.planned = End(query, params)
        return True


def _names(names: Collection[str]) -> str:
    return json.dumps(sorted(names))
