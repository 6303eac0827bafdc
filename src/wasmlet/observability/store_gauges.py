"""Gauges read from the platform store at scrape time: the durable queue's depth and
lag, the dead letter queue per function, and the scheduler's heartbeat.

They describe the whole fleet (every node shares the store), unlike the counters,
which are per node. `refresh()` reads them in a thread, at most once per `ttl_s`
however often `/metrics` is scraped; the collector only renders the last snapshot, so
rendering never touches the database (or blocks the event loop).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from wasmlet.store.base import Store
from wasmlet.telemetry.logs import get_logger

Clock = Callable[[], float]
ALWAYS_SHOWN = ("queued", "running", "dead")


@dataclass(frozen=True, slots=True)
class StoreSnapshot:
    depth: dict[str, int] = field(default_factory=dict)
    oldest_due_age_s: float = 0.0
    dead_by_function: dict[str, int] = field(default_factory=dict)
    heartbeat_age_s: float | None = None

    def queue(self) -> dict[str, int]:
        return {status: self.depth.get(status, 0) for status in ALWAYS_SHOWN} | self.depth


def read_snapshot(store: Store, now: float) -> StoreSnapshot:
    depth = {row["status"]: int(row["n"]) for row in store.fetch_all("queue_depth")}
    due = store.fetch_one("next_due_job")
    run_at = due["run_at"] if due else None
    oldest = max(0.0, now - float(run_at)) if run_at is not None else 0.0
    dead_rows = store.fetch_all("dead_letters_by_function")
    dead = {row["function_name"]: int(row["n"]) for row in dead_rows}
    beat = store.fetch_one("newest_scheduler_heartbeat")
    beat_at = beat["beat_at"] if beat else None
    heartbeat_age = max(0.0, now - float(beat_at)) if beat_at is not None else None
    return StoreSnapshot(depth, round(oldest, 3), dead, heartbeat_age)


class StoreGauges(Collector):
    def __init__(self, store: Store, clock: Clock, ttl_s: float = 1.0) -> None:
        self._store = store
        self._clock = clock
        self._ttl_s = ttl_s
        self._lock = asyncio.Lock()
        self._read_at = float("-inf")
        self.snapshot = StoreSnapshot()
        self._log = get_logger("metrics")

    async def refresh(self) -> StoreSnapshot:
        """The snapshot, read again if older than `ttl_s`. A failed read keeps the last
        one (and logs): a scrape must not fail because the store is slow or down."""
        if self._clock() - self._read_at < self._ttl_s:
            return self.snapshot
        async with self._lock:
            if self._clock() - self._read_at >= self._ttl_s:
                try:
                    self.snapshot = await asyncio.to_thread(
                        read_snapshot, self._store, self._clock()
                    )
                except Exception as exc:
                    self._log.warning(
                        "store gauges not refreshed", error=f"{type(exc).__name__}: {exc}"
                    )
                self._read_at = self._clock()
        return self.snapshot

    def describe(self) -> Iterator[GaugeMetricFamily]:
        return self._families(StoreSnapshot(), with_heartbeat=True)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        snapshot = self.snapshot
        return self._families(snapshot, with_heartbeat=snapshot.heartbeat_age_s is not None)

    def _families(
        self, snapshot: StoreSnapshot, *, with_heartbeat: bool
    ) -> Iterator[GaugeMetricFamily]:
        depth = GaugeMetricFamily(
            "functions_queue_depth",
            "Jobs in the durable queue by status (all nodes)",
            labels=["status"],
        )
        for status, count in sorted(snapshot.queue().items()):
            depth.add_metric([status], count)
        yield depth
        yield GaugeMetricFamily(
            "functions_queue_oldest_age_seconds",
            "How long the oldest due queued job has waited to start (0 when none)",
            value=snapshot.oldest_due_age_s,
        )
        dead = GaugeMetricFamily(
            "functions_dead_letter_queue_size",
            "Dead letters waiting for a retry or purge, per function",
            labels=["name"],
        )
        for name, count in sorted(snapshot.dead_by_function.items()):
            dead.add_metric([name], count)
        yield dead
        if with_heartbeat:
            yield GaugeMetricFamily(
                "functions_scheduler_heartbeat_age_seconds",
                "Seconds since any node's scheduler last completed a tick",
                value=snapshot.heartbeat_age_s or 0.0,
            )
