"""Retention of finished jobs: done rows older than the retention are deleted on a timer,
in batches, on every node (each batch is its own short statement; nodes that prune at
the same moment skip each other's rows). Dead letters stay until purged or retried."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

from wasmlet.tasks import cancel_and_wait
from wasmlet.telemetry.logs import get_logger
from wasmlet.triggers.queue import JobQueue

Clock = Callable[[], float]


@dataclass(frozen=True, slots=True)
class JobRetention:
    age_s: float
    interval_s: float = 60.0
    batch: int = 1000
    max_batches: int = 100  # per round: a backlog is worked off over several rounds


class JobPruner:
    def __init__(self, queue: JobQueue, retention: JobRetention, clock: Clock) -> None:
        self._queue = queue
        self.retention = retention
        self._clock = clock
        self._task: asyncio.Task[None] | None = None
        self._log = get_logger("retention")

    def prune(self) -> int:
        """One round: batches of done jobs past the retention until a short batch (or the
        round's cap); how many were deleted."""
        cutoff = self._clock() - self.retention.age_s
        total = 0
        for _ in range(self.retention.max_batches):
            deleted = self._queue.prune_done(cutoff, self.retention.batch)
            total += deleted
            if deleted < self.retention.batch:
                break
        return total

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="job-retention")

    async def close(self) -> None:
        await cancel_and_wait(self._task)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.retention.interval_s)
            try:
                deleted = await asyncio.to_thread(self.prune)
            except Exception as exc:  # the store is away: the next round catches up
                self._log.error("pruning done jobs failed", error=f"{type(exc).__name__}: {exc}")
                continue
            if deleted:
                self._log.info("pruned done jobs", count=deleted)
