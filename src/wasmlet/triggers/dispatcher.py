"""The dispatcher: delivers queued jobs to the invoker, after their change committed.

One loop per node: relay captured changes from the outbox into the job queue, claim
due jobs up to a concurrency bound (none of a function this node cannot run now, see
`readiness.py`), run each through the same invoker as HTTP, and record how it ended
(`endings.py`: in batches, retried through a database outage until it lands). Leases
are renewed for the jobs this node still holds, and only those. It wakes on a change
(PostgreSQL LISTEN/NOTIFY; SQLite's `PRAGMA data_version`) and polls anyway, since a
notification can be missed.

Where an event's time goes is kept short: one statement claims every job there is room
for, a slot counts as free as soon as its run returns (its end is written meanwhile,
with the other ends waiting, in one batch), the outbox is read only when it may have
changed, and the next due time only when there was nothing to claim.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Protocol

from wasmlet.appdb.base import AppDatabase
from wasmlet.backoff import Backoff, Streak
from wasmlet.errors import (
    CircuitOpen,
    FunctionError,
    FunctionNotFound,
    InternalError,
    ModuleUnavailable,
    TooManyRequests,
)
from wasmlet.invocation.invoker import InvocationRequest, InvocationResult
from wasmlet.registry.models import FunctionRecord
from wasmlet.store.listen import listen_forever
from wasmlet.tasks import cancel_and_wait
from wasmlet.telemetry.logs import get_logger
from wasmlet.telemetry.metrics import Metrics
from wasmlet.triggers.database import relay_outbox
from wasmlet.triggers.endings import Buried, Completed, Ending, EndWriter, Released, Retried
from wasmlet.triggers.queue import DeadReason, Job, JobQueue
from wasmlet.triggers.readiness import Readiness
from wasmlet.triggers.retry import decide
from wasmlet.triggers.schedules import SCHEDULE

Clock = Callable[[], float]
LEASE_RENEW_FRACTION = 0.2
OVERFLOW_DELAY_S = 0.05
MAX_RESULT_BYTES = 1024 * 1024
IDLE_POLL_S = 0.25
AFTER_ERROR_DELAY_S = 1.0
# Through a database outage: 1 s, 2 s, 4 s, then every 5 s (+-10%, so nodes spread out).
OUTAGE_BACKOFF = Backoff(base_s=AFTER_ERROR_DELAY_S, cap_s=5.0, jitter=0.1)
SETTLE_LOG_EVERY = 10  # a write failing through an outage is logged on tries 1, 11, 21...
HELD_PER_SLOT = 2  # claimed jobs held (running or with their end unwritten) per slot, at most
RELAY_BATCH = 500


class Functions(Protocol):
    async def lookup(self, name: str) -> FunctionRecord | None:
        """The function's record; a cached one costs no thread hop."""

    def module_path(self, record: FunctionRecord) -> str: ...


class Invocations(Protocol):
    async def invoke(self, request: InvocationRequest) -> InvocationResult: ...


class Dispatcher:
    def __init__(
        self,
        queue: JobQueue,
        database: AppDatabase,
        registry: Functions,
        invoker: Invocations,
        metrics: Metrics,
        *,
        readiness: Readiness,
        concurrency: int,
        poll_s: float,
        clock: Clock,
        listen_url: str | None = None,
        channel: str | None = None,
    ) -> None:
        self._queue = queue
        self._db = database
        self._registry = registry
        self._invoker = invoker
        self._metrics = metrics
        self._readiness = readiness
        self._concurrency = concurrency
        self._poll_s = poll_s
        self._clock = clock
        self._listen_url = listen_url
        self._channel = channel
        self._wake = asyncio.Event()
        self._rng = random.Random()
        self.outage = Streak(OUTAGE_BACKOFF, self._rng)  # ticks failed in a row
        self._sleep_s = IDLE_POLL_S
        self._running: set[asyncio.Task[None]] = set()
        self._in_run = 0  # deliveries claimed and not yet past their run: the slots taken
        self._in_run_of: Counter[str] = Counter()  # the same, per function
        self._limits: dict[str, int] = {}  # max_concurrency of the functions seen with one
        self._held: set[str] = set()  # ids of the jobs this node runs: their leases are renewed
        self._settling: set[asyncio.Task[bool]] = set()
        self._tasks: list[asyncio.Task[None]] = []
        self._outbox_changed = True  # read the outbox on the next tick
        self._queue_changed = True  # a claim may find something; next_due may have moved
        self._next_due: float | None = None
        self._skipped: frozenset[str] = frozenset()
        self._ends: EndWriter | None = None
        self._log = get_logger("dispatch")

    def start(self) -> None:
        self._ends = EndWriter(self._queue)
        self._ends.start()
        self._tasks.append(asyncio.create_task(self._loop(), name="dispatcher"))
        self._tasks.append(asyncio.create_task(self._leases(), name="dispatcher-leases"))
        if self._listen_url and self._channel:
            self._tasks.append(asyncio.create_task(self._listen(), name="dispatcher-listen"))
        else:
            self._tasks.append(asyncio.create_task(self._watch_sqlite(), name="dispatcher-watch"))

    async def close(self) -> None:
        await cancel_and_wait(*self._tasks)
        if self._running:
            await asyncio.wait(self._running, timeout=5)
        if self._ends is not None:
            await self._ends.close()

    @property
    def largest_end_batch(self) -> int:
        """The most job ends written in one transaction so far."""
        return self._ends.largest_batch if self._ends is not None else 0

    def wake(self) -> None:
        self._outbox_changed = True
        self._queue_changed = True
        self._wake.set()

    async def _loop(self) -> None:
        outage = self.outage
        while True:
            try:
                await self._tick()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the store is down or busy: log, back off, go on
                delay = outage.failed()
                self._log.error(
                    "dispatch tick failed", error=f"{type(exc).__name__}: {exc}",
                    failures=outage.failures, backoff_s=round(delay, 3),
                )  # fmt: skip
                self._outbox_changed = self._queue_changed = True
                await asyncio.sleep(delay)
                continue
            outage.succeeded()
            try:
                # Not `asyncio.wait_for`: on Python 3.11 a cancel that arrives as the wake-up
                # lands is swallowed (the wake-up is returned), and close() waits forever.
                async with asyncio.timeout(self._sleep_s):
                    await self._wake.wait()
            except TimeoutError:  # a notification can be missed: poll
                self._outbox_changed = self._queue_changed = True
            self._wake.clear()

    async def _tick(self) -> None:
        """Relay, claim, and learn when to look again; each step only when something it
        depends on may have changed (a notification, a poll, a relay, an end that landed),
        not on every wake-up a returning run causes."""
        moved = 0
        if self._outbox_changed:
            self._outbox_changed = False
            moved = await asyncio.to_thread(relay_outbox, self._db, self._queue, RELAY_BATCH)
            if moved >= RELAY_BATCH:
                self._outbox_changed = True  # more waiting
            if moved:
                self._queue_changed = True
        caps = self._caps()
        skip = frozenset({*self._readiness.not_ready(), *(n for n, r in caps.items() if r <= 0)})
        if skip != self._skipped:  # a breaker closed, a module loads again, a slot freed...
            self._skipped = skip
            self._queue_changed = True
        changed, self._queue_changed = self._queue_changed, False
        drained = not changed
        claimed = 0
        while not drained:
            free = self._free()
            if free <= 0:
                self._queue_changed = True  # not looked at all: look once a slot is free
                break
            jobs = await asyncio.to_thread(self._queue.claim, free, skip, caps)
            claimed += len(jobs)
            for job in jobs:
                self._held.add(job.id)
                self._in_run += 1
                self._in_run_of[job.function_name] += 1
                task = asyncio.create_task(self._deliver(job))
                self._running.add(task)
                task.add_done_callback(self._done)
            drained = len(jobs) < free
            if not drained:
                caps = self._caps()
        if moved:
            self._wake.set()
        if self._free() <= 0 or claimed:
            self._sleep_s = IDLE_POLL_S  # a run that returns wakes the loop
            return
        if changed:
            self._next_due = await asyncio.to_thread(self._queue.next_due, skip)
        next_due = self._next_due
        wait = IDLE_POLL_S if next_due is None else next_due - self._clock()
        self._sleep_s = min(IDLE_POLL_S, max(0.005, wait))

    def _free(self) -> int:
        """Room for more claims: slots whose run returned count as free while their end
        is written, up to a bound on the jobs held."""
        held_room = self._concurrency * HELD_PER_SLOT - len(self._held)
        return min(self._concurrency - self._in_run, held_room)

    def _caps(self) -> dict[str, int]:
        """Free slots of each function with a `max_concurrency` (as far as this node's own
        deliveries go): the claim takes no more of its jobs than it can start."""
        return {name: limit - self._in_run_of[name] for name, limit in self._limits.items()}

    def _run_returned(self, job: Job) -> None:
        self._in_run -= 1
        name = job.function_name
        self._in_run_of[name] -= 1
        if self._in_run_of[name] <= 0:
            del self._in_run_of[name]
        if name in self._limits:
            self._queue_changed = True  # one of its slots is free: claim for it again
        self._wake.set()

    def _done(self, task: asyncio.Task[None]) -> None:
        self._running.discard(task)
        self._queue_changed = True  # an end landed: a retry is due later, a row's next event
        self._wake.set()

    async def _deliver(self, job: Job) -> None:
        """Run one claimed job and record how it ended, whatever happens meanwhile."""
        try:
            try:
                ending = await self._attempt(job)
            finally:
                self._run_returned(job)  # the slot is free; the end is written meanwhile
        except asyncio.CancelledError:  # shutting down mid-run: back to the queue at once
            await self._finish(job, Released(0.0))
            raise
        except Exception as exc:  # the store away (or a bug) before the function ran
            self._log.error(
                "delivery failed before the run; job handed back", function=job.function_name,
                request_id=job.id, event_id=job.id, error=f"{type(exc).__name__}: {exc}",
            )  # fmt: skip
            ending = Released(AFTER_ERROR_DELAY_S)
        await self._finish(job, ending)

    async def _attempt(self, job: Job) -> Ending:
        record = await self._registry.lookup(job.function_name)
        self._learn_limit(job.function_name, record)
        if record is None or not record.enabled:
            missing = FunctionNotFound(f"Function not found or disabled: {job.function_name}")
            return _buried(job, DeadReason.NON_RETRIABLE, missing, None)
        if not self._readiness.check(record):
            return Released(0.0)  # another node may run it now; this one skips it meanwhile
        self._observe_latency(job)
        meta = job.request_meta or {}
        request = InvocationRequest(
            function=record,
            module_path=self._registry.module_path(record),
            payload=self._with_start_time(job),
            request_id=job.id,
            trigger=job.trigger_kind,
            method=str(meta.get("method", "POST")),
            path=str(meta.get("path", "/")),
            query=str(meta.get("query", "")),
            headers=meta.get("headers") or {"content-type": "application/json"},
            user_id=_user_id(meta),
            attempt=job.attempts,
        )
        try:
            result = await self._invoker.invoke(request)
        except TooManyRequests:
            return Released(OVERFLOW_DELAY_S)
        except CircuitOpen:
            return Released(0.0)  # not claimed here again while the breaker refuses
        except ModuleUnavailable:
            return Released(0.0)  # not claimed here again while the build is refused here
        except FunctionError as exc:
            return self._failed(job, record, exc)
        except Exception as exc:  # a bug of ours, and the function may have run: a person looks
            self._log.exception(
                "delivery failed", function=job.function_name, request_id=job.id, error=repr(exc)
            )
            failure = InternalError(f"Internal error: {type(exc).__name__}", function=record.name)
            return _buried(job, DeadReason.NON_RETRIABLE, failure, record.version)
        self._log.info(
            "delivered", operation="deliver", function=job.function_name, request_id=job.id,
            event_id=job.id, trigger=job.trigger_kind, attempt=job.attempts,
            status=result.status, duration_ms=round(result.duration_ms, 3), error=None,
        )  # fmt: skip
        return Completed(record.version, result.status, result.body[:MAX_RESULT_BYTES])

    def _learn_limit(self, name: str, record: FunctionRecord | None) -> None:
        limit = record.config.max_concurrency if record is not None else None
        if limit is None:
            self._limits.pop(name, None)
        elif self._limits.get(name) != limit:
            self._limits[name] = limit
            self._queue_changed = True

    def _failed(self, job: Job, record: FunctionRecord, exc: FunctionError) -> Ending:
        decision = decide(record.config.retry, job.attempts, exc, self._rng)
        if decision.retry:
            return Retried(decision.delay_s, exc.type, exc.message, exc.status, record.version)
        assert decision.dead_reason is not None
        return _buried(job, decision.dead_reason, exc, record.version)

    async def _finish(self, job: Job, ending: Ending) -> None:
        """Write the ending until it lands; the lease is renewed until then. Shielded: a
        cancelled delivery still records its end."""
        assert self._ends is not None, "start() first"
        task = asyncio.create_task(
            self._ends.settle(job, ending, on_failure=self._settle_failed(job, ending))
        )
        self._settling.add(task)
        task.add_done_callback(self._settled(job, ending))
        await asyncio.shield(task)

    def _settle_failed(self, job: Job, ending: Ending) -> Callable[[Exception, int], None]:
        def failed(exc: Exception, failures: int) -> None:
            if failures % SETTLE_LOG_EVERY == 1:
                self._log.warning(
                    "recording a job's end failed; trying again", function=job.function_name,
                    request_id=job.id, event_id=job.id, ending=type(ending).__name__.lower(),
                    failures=failures, error=f"{type(exc).__name__}: {exc}",
                )  # fmt: skip

        return failed

    def _settled(self, job: Job, ending: Ending) -> Callable[[asyncio.Task[bool]], None]:
        def settled(task: asyncio.Task[bool]) -> None:
            self._settling.discard(task)
            self._held.discard(job.id)
            if task.cancelled() or task.exception() is not None:
                return  # shut down before it landed: the lease expires, the job runs again
            if task.result():
                self._landed(job, ending)
            else:
                self._log.warning(
                    "job taken over by another node; this end dropped",
                    function=job.function_name,
                    request_id=job.id,
                    event_id=job.id,
                    ending=type(ending).__name__.lower(),
                )

        return settled

    def _landed(self, job: Job, ending: Ending) -> None:
        if isinstance(ending, Retried):
            self._metrics.retries.labels(job.function_name, ending.error_type).inc()
            self._log.warning(
                "attempt failed; retrying", operation="retry", function=job.function_name,
                request_id=job.id, event_id=job.id, attempt=job.attempts,
                delay_ms=round(ending.delay_s * 1000, 1),
                error=f"{ending.status} {ending.error}", error_type=ending.error_type,
            )  # fmt: skip
        elif isinstance(ending, Buried):
            self._metrics.dead_letters.labels(job.function_name, str(ending.reason)).inc()
            self._log.error(
                "moved to the dead letter queue", operation="dead_letter",
                function=job.function_name, request_id=job.id, event_id=job.id,
                attempt=job.attempts, reason=str(ending.reason),
                error=f"{ending.status} {ending.error}", error_type=ending.error_type,
            )  # fmt: skip

    def _with_start_time(self, job: Job) -> bytes:
        """A scheduled run learns its actual start beside its scheduled time."""
        if job.trigger_kind != SCHEDULE:
            return job.payload
        payload = json.loads(job.payload)
        started = self._clock()
        payload["started_at"] = datetime.fromtimestamp(started, UTC).isoformat()
        payload["started_at_epoch"] = started
        payload["attempt"] = job.attempts
        return json.dumps(payload).encode()

    def _observe_latency(self, job: Job) -> None:
        committed_at = _committed_at(job.payload)
        if committed_at is not None:
            self._metrics.delivery_latency.labels(job.trigger_kind).observe(
                max(0.0, self._clock() - committed_at)
            )

    async def _leases(self) -> None:
        while True:
            await asyncio.sleep(self._queue.lease_s * LEASE_RENEW_FRACTION)
            try:
                await asyncio.to_thread(self._queue.extend_leases, sorted(self._held))
                requeued = await asyncio.to_thread(self._queue.requeue_expired)
            except Exception as exc:
                self._log.error("lease renewal failed", error=f"{type(exc).__name__}: {exc}")
                continue
            if requeued:
                self._log.warning("requeued jobs of a lost node", count=requeued)
                self._wake.set()

    async def _watch_sqlite(self) -> None:
        data_version = getattr(self._db, "data_version", None)
        if data_version is None:
            return
        seen = -1
        while True:
            await asyncio.sleep(self._poll_s)
            try:
                version = int(data_version())
            except Exception:
                continue
            if version != seen:
                seen = version
                self.wake()

    async def _listen(self) -> None:
        assert self._listen_url is not None and self._channel is not None
        await listen_forever(
            self._listen_url, self._channel, on_notify=lambda _: self.wake(),
            on_connected=self.wake, operation="dispatch", backoff=OUTAGE_BACKOFF, rng=self._rng,
        )  # fmt: skip


def _buried(job: Job, reason: DeadReason, error: FunctionError, version: int | None) -> Buried:
    message = error.message
    if reason is DeadReason.MAX_RETRIES_EXCEEDED:
        message = f"MaxRetriesExceeded after {job.attempts} attempts: {error.message}"
    return Buried(reason, error.type, message, error.status, version)


def _committed_at(payload: bytes) -> float | None:
    try:
        data: Any = json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(data, dict):
        return None
    value = data.get("committed_at", data.get("scheduled_at_epoch"))
    return float(value) if isinstance(value, int | float) else None


def _user_id(meta: dict[str, Any]) -> str | None:
    """The user an asynchronous HTTP call was verified for (the route checked the JWT)."""
    user_id = meta.get("user_id")
    return user_id if isinstance(user_id, str) else None
