"""The dispatcher: delivers queued jobs to the invoker, after their change committed.

One loop per node: relay captured changes from the outbox into the job queue, claim
due jobs up to a concurrency bound, run each through the same invoker as HTTP, and
record how it ended. It wakes on a change (PostgreSQL LISTEN/NOTIFY; SQLite's
`PRAGMA data_version`) and polls anyway, since a notification can be missed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from wasmlet.appdb.base import AppDatabase
from wasmlet.errors import CircuitOpen, FunctionError, FunctionNotFound, TooManyRequests
from wasmlet.observability.logs import get_logger
from wasmlet.observability.metrics import Metrics
from wasmlet.registry.registry import Registry
from wasmlet.reliability.invoker import InvocationRequest, Invoker
from wasmlet.reliability.retry import decide
from wasmlet.triggers.database import relay_outbox
from wasmlet.triggers.queue import DeadReason, Job, JobQueue
from wasmlet.triggers.schedules import SCHEDULE

Clock = Callable[[], float]
LEASE_RENEW_FRACTION = 0.2
OVERFLOW_DELAY_S = 0.05
MAX_RESULT_BYTES = 1024 * 1024
IDLE_POLL_S = 0.25


class Dispatcher:
    def __init__(
        self,
        queue: JobQueue,
        database: AppDatabase,
        registry: Registry,
        invoker: Invoker,
        metrics: Metrics,
        *,
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
        self._concurrency = concurrency
        self._poll_s = poll_s
        self._clock = clock
        self._listen_url = listen_url
        self._channel = channel
        self._wake = asyncio.Event()
        self._rng = random.Random()
        self._sleep_s = IDLE_POLL_S
        self._running: set[asyncio.Task[None]] = set()
        self._tasks: list[asyncio.Task[None]] = []
        self._log = get_logger("dispatch")

    def start(self) -> None:
        self._tasks.append(asyncio.create_task(self._loop(), name="dispatcher"))
        self._tasks.append(asyncio.create_task(self._leases(), name="dispatcher-leases"))
        if self._listen_url and self._channel:
            self._tasks.append(asyncio.create_task(self._listen(), name="dispatcher-listen"))
        else:
            self._tasks.append(asyncio.create_task(self._watch_sqlite(), name="dispatcher-watch"))

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._running:
            await asyncio.wait(self._running, timeout=5)

    def wake(self) -> None:
        self._wake.set()

    async def _loop(self) -> None:
        while True:
            try:
                await self._tick()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the store is down or busy: log, back off, go on
                self._log.error("dispatch tick failed", error=f"{type(exc).__name__}: {exc}")
                await asyncio.sleep(1.0)
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self._sleep_s)
            self._wake.clear()

    async def _tick(self) -> None:
        moved = await asyncio.to_thread(relay_outbox, self._db, self._queue)
        while True:
            free = self._concurrency - len(self._running)
            jobs = await asyncio.to_thread(self._queue.claim, free) if free > 0 else []
            for job in jobs:
                task = asyncio.create_task(self._deliver(job))
                self._running.add(task)
                task.add_done_callback(self._done)
            if len(jobs) < free or free <= 0:
                break
        if moved:
            self._wake.set()
        if len(self._running) >= self._concurrency:
            self._sleep_s = IDLE_POLL_S  # a finishing delivery wakes the loop
            return
        next_due = await asyncio.to_thread(self._queue.next_due)
        wait = IDLE_POLL_S if next_due is None else next_due - self._clock()
        self._sleep_s = min(IDLE_POLL_S, max(0.005, wait))

    def _done(self, task: asyncio.Task[None]) -> None:
        self._running.discard(task)
        self._wake.set()

    async def _deliver(self, job: Job) -> None:
        record = await asyncio.to_thread(self._registry.find, job.function_name)
        if record is None or not record.enabled:
            missing = FunctionNotFound(f"Function not found or disabled: {job.function_name}")
            await self._bury(job, DeadReason.NON_RETRIABLE, missing, None)
            return
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
            attempt=job.attempts,
        )
        try:
            result = await self._invoker.invoke(request)
        except TooManyRequests:
            await asyncio.to_thread(self._queue.release, job.id, OVERFLOW_DELAY_S)
            return
        except CircuitOpen as exc:
            await asyncio.to_thread(self._queue.release, job.id, float(exc.retry_after or 1))
            return
        except FunctionError as exc:
            decision = decide(record.config.retry, job.attempts, exc, self._rng)
            if decision.retry:
                self._metrics.retries.labels(job.function_name, exc.type).inc()
                self._log.warning(
                    "attempt failed; retrying", operation="retry", function=job.function_name,
                    request_id=job.id, event_id=job.id, attempt=job.attempts,
                    delay_ms=round(decision.delay_s * 1000, 1),
                    error=f"{exc.status} {exc.message}", error_type=exc.type,
                )  # fmt: skip
                await asyncio.to_thread(
                    self._queue.retry, job.id, delay_s=decision.delay_s, error_type=exc.type,
                    error=exc.message, version=record.version,
                )  # fmt: skip
            else:
                assert decision.dead_reason is not None
                await self._bury(job, decision.dead_reason, exc, record.version)
            return
        await asyncio.to_thread(
            self._queue.complete, job.id, version=record.version,
            result_status=result.status, result_body=result.body[:MAX_RESULT_BYTES],
        )  # fmt: skip
        self._log.info(
            "delivered", operation="deliver", function=job.function_name, request_id=job.id,
            event_id=job.id, trigger=job.trigger_kind, attempt=job.attempts,
            status=result.status, duration_ms=round(result.duration_ms, 3), error=None,
        )  # fmt: skip

    async def _bury(
        self, job: Job, reason: DeadReason, error: FunctionError, version: int | None
    ) -> None:
        message = error.message
        if reason is DeadReason.MAX_RETRIES_EXCEEDED:
            message = f"MaxRetriesExceeded after {job.attempts} attempts: {error.message}"
        await asyncio.to_thread(
            self._queue.bury, job.id, reason=reason, error_type=error.type, error=message,
            version=version, result_status=error.status,
        )  # fmt: skip
        self._metrics.dead_letters.labels(job.function_name, str(reason)).inc()
        self._log.error(
            "moved to the dead letter queue", operation="dead_letter",
            function=job.function_name, request_id=job.id, event_id=job.id, attempt=job.attempts,
            reason=str(reason), error=f"{error.status} {message}",
            error_type=error.type,
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
                await asyncio.to_thread(self._queue.extend_leases)
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
                self._wake.set()

    async def _listen(self) -> None:
        import psycopg

        assert self._listen_url is not None and self._channel is not None
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                    self._listen_url, autocommit=True
                ) as conn:
                    await conn.execute(f'LISTEN "{self._channel}"')
                    self._wake.set()
                    async for _ in conn.notifies():
                        self._wake.set()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._log.warning("listen connection lost", error=f"{type(exc).__name__}: {exc}")
                await asyncio.sleep(1.0)


def _committed_at(payload: bytes) -> float | None:
    try:
        data: Any = json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(data, dict):
        return None
    value = data.get("committed_at", data.get("scheduled_at_epoch"))
    return float(value) if isinstance(value, int | float) else None
