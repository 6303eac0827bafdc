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
from collections.abc import Callable
from typing import Any

from wasmlet.appdb.base import AppDatabase
from wasmlet.errors import FunctionError, FunctionNotFound, TooManyRequests
from wasmlet.observability.logs import get_logger
from wasmlet.observability.metrics import Metrics
from wasmlet.registry.registry import Registry
from wasmlet.reliability.invoker import InvocationRequest, Invoker
from wasmlet.triggers.database import relay_outbox
from wasmlet.triggers.queue import Job, JobQueue

Clock = Callable[[], float]
LEASE_RENEW_FRACTION = 0.2
OVERFLOW_DELAY_S = 0.05


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
                await asyncio.wait_for(self._wake.wait(), timeout=max(self._poll_s, 0.25))
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

    def _done(self, task: asyncio.Task[None]) -> None:
        self._running.discard(task)
        self._wake.set()

    async def _deliver(self, job: Job) -> None:
        record = await asyncio.to_thread(self._registry.find, job.function_name)
        if record is None or not record.enabled:
            missing = FunctionNotFound(f"Function not found or disabled: {job.function_name}")
            await asyncio.to_thread(self._queue.fail, job.id, missing.type, missing.message)
            self._log.error(
                "event not delivered", function=job.function_name, event_id=job.id,
                error=f"{missing.status} {missing.message}", error_type=missing.type,
            )  # fmt: skip
            return
        self._observe_latency(job)
        request = InvocationRequest(
            function=record,
            module_path=self._registry.module_path(record),
            payload=job.payload,
            request_id=job.id,
            trigger=job.trigger_kind,
            method="POST",
            headers={"content-type": "application/json"},
        )
        try:
            await self._invoker.invoke(request)
        except TooManyRequests:
            await asyncio.to_thread(self._queue.release, job.id, OVERFLOW_DELAY_S)
            return
        except FunctionError as exc:
            await asyncio.to_thread(self._queue.fail, job.id, exc.type, exc.message)
            return
        await asyncio.to_thread(self._queue.complete, job.id)

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
    value = data.get("committed_at") if isinstance(data, dict) else None
    return float(value) if isinstance(value, int | float) else None
