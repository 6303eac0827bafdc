"""The scheduler driven by an injected clock, on SQLite and PostgreSQL stores."""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
import uuid
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest

from tests.support.postgres import ADMIN_URL
from wasmlet.errors import InvalidTrigger
from wasmlet.store.base import Store
from wasmlet.store.postgres import PostgresStore
from wasmlet.triggers.queue import JobQueue
from wasmlet.triggers.scheduler import Scheduler, SchedulerSupervisor, TickReport
from wasmlet.triggers.schedules import ScheduleBook, validate_schedule


class Clock:
    def __init__(self, start: datetime) -> None:
        self.now = start.timestamp()

    def __call__(self) -> float:
        return self.now


def _function(store: Store, name: str) -> None:
    """The schedules table references functions: a bare row is enough here."""
    store.execute("put_module", key="k", wasm=b"\0asm", now=0.0)
    store.execute("insert_function", name=name, enabled=True, config="{}", triggers="[]", now=0.0)
    store.execute(
        "insert_version", name=name, version=1, module_key="k", config="{}", now=0.0,
        triggers="[]", runtime="wasm", size=0, rolled_back_from=None,
    )  # fmt: skip


def setup(store: Store, clock: Clock, trigger: dict[str, Any], name: str = "f") -> Scheduler:
    store.migrate()
    _function(store, name)
    ScheduleBook(store, clock).sync(name, [validate_schedule(trigger, clock.now)])
    queue = JobQueue(store, node="n1", clock=clock)
    return Scheduler(store, queue, None, clock=clock, tick_s=1.0)


def scheduled_times(store: Store) -> list[str]:
    return sorted(json.loads(job["payload"])["scheduled_at"] for job in _all_jobs(store))


def _all_jobs(store: Store) -> list[dict[str, Any]]:
    queue = JobQueue(store, node="reader", clock=lambda: 4e9)
    return [{"payload": job.payload, "id": job.id} for job in queue.claim(100_000)]


@pytest.mark.parametrize(
    "trigger",
    [
        {"type": "schedule", "cron": "61 * * * *"},
        {"type": "schedule", "cron": "* * *"},
        {"type": "schedule", "cron": "*/5 * * * *", "timezone": "Mars/Olympus"},
        {"type": "schedule", "cron": "*/5 * * * *", "catch_up": "some"},
        {"type": "schedule", "cron": "*/5 * * * *", "catch_up_cap": 0},
        {"type": "schedule"},
        {"type": "schedule", "cron": "0 0 31 2 *"},
        {"type": "schedule", "cron": "0 0 0 30 2 *"},
        {"type": "schedule", "cron": "0 0 31 4 *", "timezone": "Europe/Paris"},
    ],
)
def test_invalid_schedules_are_refused(trigger: dict[str, Any]) -> None:
    with pytest.raises(InvalidTrigger):
        validate_schedule(trigger, datetime(2026, 1, 1, tzinfo=UTC).timestamp())


@pytest.mark.parametrize(
    "now", [datetime(2097, 3, 1, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC)]
)
def test_leap_day_is_within_the_horizon(now: datetime) -> None:
    """29 February 2104 is seven years after March 2097 (2100 is no leap year)."""
    trigger = {"type": "schedule", "cron": "0 0 29 2 *"}
    assert validate_schedule(trigger, now.timestamp())["cron"] == "0 0 29 2 *"


def test_fires_at_local_9am_across_a_dst_change(store: Store) -> None:
    clock = Clock(datetime(2026, 3, 6, 12, 0, tzinfo=UTC))
    scheduler = setup(
        store, clock, {"type": "schedule", "cron": "0 9 * * *", "timezone": "America/New_York"}
    )
    for _ in range(4 * 24):  # four days, hour by hour
        clock.now += 3600
        scheduler.tick()
    assert scheduled_times(store) == [
        "2026-03-06T14:00:00Z",  # EST, UTC-5
        "2026-03-07T14:00:00Z",
        "2026-03-08T13:00:00Z",  # EDT from 2 a.m. on 8 March, UTC-4
        "2026-03-09T13:00:00Z",
    ]


@pytest.mark.parametrize(("policy", "expected"), [("latest", 1), ("all", 12), ("none", 0)])
def test_an_hour_of_downtime_on_every_5_minutes(store: Store, policy: str, expected: int) -> None:
    clock = Clock(datetime(2026, 5, 1, 10, 0, 30, tzinfo=UTC))
    trigger = {"type": "schedule", "cron": "*/5 * * * *", "catch_up": policy}
    scheduler = setup(store, clock, trigger)
    clock.now += 3600  # down for an hour: the next tick is at 11:00:30
    report = scheduler.tick()
    assert report.missed == 12
    jobs = _all_jobs(store)
    assert len(jobs) == expected
    if policy == "latest":
        payload = json.loads(jobs[0]["payload"])
        assert payload["scheduled_at"] == "2026-05-01T11:00:00Z" and payload["missed"] is True
    # After the catch-up the schedule runs on time again: a tick just after 11:05.
    clock.now += 270.5
    assert scheduler.tick().enqueued == 1


class CrashBeforeAdvance:
    """A store through which the tick dies after enqueueing, before advancing."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def execute(self, query: str, /, **params: Any) -> int:
        if query == "advance_schedule":
            raise RuntimeError("killed mid-tick")
        return self._store.execute(query, **params)


def test_restart_in_the_middle_of_a_tick_enqueues_nothing_twice(store: Store) -> None:
    clock = Clock(datetime(2026, 5, 1, 10, 0, 30, tzinfo=UTC))
    setup(store, clock, {"type": "schedule", "cron": "* * * * *", "catch_up": "all"})
    clock.now += 600
    dying = Scheduler(CrashBeforeAdvance(store), JobQueue(store, "n1", clock), None, clock=clock)  # type: ignore[arg-type]
    with pytest.raises(RuntimeError):
        dying.tick()
    assert len(JobQueue(store, "x", clock).counts()) == 1  # its runs were enqueued
    Scheduler(store, JobQueue(store, "n2", clock), None, clock=clock).tick()
    jobs = _all_jobs(store)
    assert len(jobs) == 10 and len({job["id"] for job in jobs}) == 10


@pytest.mark.postgres
def test_two_schedulers_on_one_postgres_database_60_ticks_60_runs() -> None:
    schema = f"wasmlet_test_{uuid.uuid4().hex[:12]}"
    stores = [PostgresStore(ADMIN_URL, schema=schema) for _ in range(2)]
    try:
        clock = Clock(datetime(2026, 5, 1, 10, 0, 30, tzinfo=UTC))
        setup(stores[0], clock, {"type": "schedule", "cron": "* * * * *"})
        schedulers = [
            Scheduler(s, JobQueue(s, f"node-{i}", clock), None, clock=clock)
            for i, s in enumerate(stores)
        ]
        for _ in range(60):
            clock.now += 60
            threads = [threading.Thread(target=s.tick) for s in schedulers]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        jobs = _all_jobs(stores[0])
        assert len(jobs) == 60
        assert len({job["id"] for job in jobs}) == 60
    finally:
        for s in stores:
            s.close()
        with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def test_a_crashing_tick_is_restarted_and_the_next_tick_fires(store: Store) -> None:
    clock = Clock(datetime(2026, 5, 1, 10, 0, 30, tzinfo=UTC))
    scheduler = setup(store, clock, {"type": "schedule", "cron": "* * * * *"})
    calls = itertools.count()

    def flaky_tick() -> TickReport:
        clock.now += 60
        if next(calls) == 0:
            raise RuntimeError("scheduler bug")
        return scheduler.tick()

    slept: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        slept.append(seconds)

    supervisor = SchedulerSupervisor(flaky_tick, tick_s=1.0, clock=clock, sleep=fake_sleep)
    asyncio.run(supervisor.run(ticks=3))
    assert supervisor.restarts == 1
    assert slept[0] == 1.0  # backed off before the restart
    assert len(_all_jobs(store)) == 2  # the two ticks after the crash fired


def test_health_turns_unhealthy_when_the_heartbeat_stalls() -> None:
    clock = Clock(datetime(2026, 5, 1, tzinfo=UTC))

    async def no_sleep(seconds: float) -> None:
        del seconds

    supervisor = SchedulerSupervisor(
        lambda: TickReport(0, 0, 0), tick_s=1.0, clock=clock, sleep=no_sleep
    )
    assert not supervisor.healthy()  # no heartbeat yet
    asyncio.run(supervisor.run(ticks=1))
    assert supervisor.healthy()
    clock.now += 2.0
    assert supervisor.healthy()
    clock.now += 1.0  # older than two ticks
    assert not supervisor.healthy()
    assert supervisor.heartbeat_age() == pytest.approx(3.0)
