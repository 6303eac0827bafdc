"""The scheduler: turns due cron times into jobs on the durable queue.

Each tick reads the active schedules, computes the runs due since each schedule's
`last_run`, applies the schedule's catch-up policy to the ones missed (due longer ago
than the grace), and enqueues the rest. A run's job id is derived from its schedule
and scheduled time, so any number of scheduler instances on one database, or a
restart in the middle of a tick, enqueue each run once. The clock is passed in.

`SchedulerSupervisor` runs ticks forever: it writes a heartbeat after every tick, and
when a tick raises it logs, counts, backs off and goes on, without a server restart.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from wasmlet.backoff import Backoff, Streak
from wasmlet.store.base import Store
from wasmlet.tasks import cancel_and_wait
from wasmlet.telemetry.logs import get_logger
from wasmlet.telemetry.metrics import Metrics
from wasmlet.triggers.queue import JobQueue, NewJob
from wasmlet.triggers.schedules import SCHEDULE, fire_times, next_fire

Clock = Callable[[], float]
GRACE_TICKS = 2
MAX_BACKOFF_S = 30.0


@dataclass(frozen=True, slots=True)
class TickReport:
    enqueued: int
    missed: int
    skipped: int


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat().replace("+00:00", "Z")


class Scheduler:
    def __init__(
        self,
        store: Store,
        queue: JobQueue,
        metrics: Metrics | None,
        *,
        clock: Clock,
        tick_s: float = 1.0,
    ) -> None:
        self._store = store
        self._queue = queue
        self._metrics = metrics
        self._clock = clock
        self.tick_s = tick_s
        self._log = get_logger("schedule")

    def tick(self) -> TickReport:
        now = self._clock()
        grace = GRACE_TICKS * self.tick_s
        enqueued = missed_total = skipped_total = 0
        for row in self._store.fetch_all("active_schedules"):
            after = float(row["last_run"] if row["last_run"] is not None else row["created_at"])
            cap = int(row["catch_up_cap"])
            due = fire_times(row["cron"], row["timezone"], after, now, limit=cap + 64)
            if not due:
                continue
            missed = [t for t in due if t < now - grace]
            on_time = [t for t in due if t >= now - grace]
            kept = self._catch_up(row["catch_up"], missed, cap)
            runs = [(t, t in missed) for t in kept] + [(t, False) for t in on_time]
            jobs = [self._job(row, t, was_missed, now) for t, was_missed in runs]
            if jobs:
                self._queue.enqueue(jobs)
            self._store.execute(
                "advance_schedule",
                function_name=row["function_name"],
                schedule_id=row["schedule_id"],
                last_run=due[-1],
                next_run=next_fire(row["cron"], row["timezone"], now),
                last_job_id=jobs[-1].id if jobs else None,
                now=now,
            )
            skipped = len(missed) - len(kept)
            if missed:
                self._report_missed(row, len(missed), skipped)
            enqueued += len(jobs)
            missed_total += len(missed)
            skipped_total += skipped
        return TickReport(enqueued, missed_total, skipped_total)

    @staticmethod
    def _catch_up(policy: str, missed: list[float], cap: int) -> list[float]:
        if not missed or policy == "none":
            return []
        if policy == "latest":
            return missed[-1:]
        return missed[-cap:]

    def _job(self, row: dict[str, Any], at: float, missed: bool, now: float) -> NewJob:
        function = row["function_name"]
        payload = {
            "type": SCHEDULE,
            "schedule": row["cron"],
            "timezone": row["timezone"],
            "scheduled_at": iso(at),
            "scheduled_at_epoch": at,
            "enqueued_at": iso(now),
            "missed": missed,
        }
        return NewJob(
            id=f"schedule:{function}:{row['schedule_id']}:{round(at)}",
            function_name=function,
            trigger_kind=SCHEDULE,
            payload=json.dumps(payload).encode(),
        )

    def _report_missed(self, row: dict[str, Any], missed: int, skipped: int) -> None:
        function = row["function_name"]
        if self._metrics is not None:
            self._metrics.schedule_missed.labels(function, row["catch_up"]).inc(missed)
        self._log.warning(
            "missed scheduled runs",
            function=function,
            schedule=row["cron"],
            catch_up=row["catch_up"],
            missed=missed,
            skipped=skipped,
            run=missed - skipped,
        )


class SchedulerSupervisor:
    """Runs `tick` every `tick_s`; survives a failing tick; keeps a heartbeat."""

    def __init__(
        self,
        tick: Callable[[], TickReport],
        *,
        tick_s: float,
        clock: Clock,
        heartbeat: Callable[[float, int], None] | None = None,
        metrics: Metrics | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._tick = tick
        self.tick_s = tick_s
        self._clock = clock
        self._heartbeat = heartbeat
        self._metrics = metrics
        self._sleep = sleep
        self.last_beat: float | None = None
        self.restarts = 0
        self._task: asyncio.Task[None] | None = None
        self._log = get_logger("schedule")

    def heartbeat_age(self) -> float | None:
        return None if self.last_beat is None else max(0.0, self._clock() - self.last_beat)

    def healthy(self) -> bool:
        """Unhealthy when the last heartbeat is older than two ticks."""
        age = self.heartbeat_age()
        return age is not None and age <= 2 * self.tick_s + 0.5

    def start(self) -> None:
        self._task = asyncio.create_task(self.run(), name="scheduler")

    async def close(self) -> None:
        await cancel_and_wait(self._task)

    async def run(self, ticks: int | None = None) -> None:
        """Tick forever (or `ticks` times, for tests)."""
        failures = Streak(Backoff(base_s=self.tick_s, cap_s=MAX_BACKOFF_S))
        done = 0
        while ticks is None or done < ticks:
            started = time.monotonic()
            try:
                report = await asyncio.to_thread(self._tick)
                await asyncio.to_thread(self._beat)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                delay = failures.failed()
                self.restarts += 1
                if self._metrics is not None:
                    self._metrics.scheduler_restarts.inc()
                self._log.error(
                    "scheduler tick failed; restarting",
                    error=f"{type(exc).__name__}: {exc}",
                    restarts=self.restarts,
                    backoff_s=delay,
                )
                done += 1
                await self._sleep(delay)
                continue
            failures.succeeded()
            done += 1
            if report.enqueued:
                self._log.info(
                    "scheduler tick", enqueued=report.enqueued, missed=report.missed,
                    duration_ms=round((time.monotonic() - started) * 1000, 3),
                )  # fmt: skip
            await self._sleep(max(0.0, self.tick_s - (time.monotonic() - started)))

    def _beat(self) -> None:
        now = self._clock()
        if self._heartbeat is not None:
            self._heartbeat(now, self.restarts)
        self.last_beat = now
        if self._metrics is not None:
            self._metrics.scheduler_heartbeat.set(now)
