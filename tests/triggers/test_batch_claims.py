"""Batch claims on a shared database: two claimers (two connections, as two nodes) never
get the same job, and two real dispatchers on one PostgreSQL database run each job once."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest

from tests.support.postgres import ADMIN_URL
from tests.triggers.test_dispatcher import FakeInvoker, Functions, Ready
from wasmlet.appdb.sqlite import SqliteAppDatabase
from wasmlet.store.base import Store
from wasmlet.store.postgres import PostgresStore
from wasmlet.store.sqlite import SqliteStore
from wasmlet.telemetry.metrics import Metrics
from wasmlet.triggers.dispatcher import Dispatcher
from wasmlet.triggers.queue import JobQueue, JobStatus, NewJob

JOBS = 1500
CLAIM = 25
BOUND_S = 60.0  # against a hang only


@contextmanager
def shared(kind: str, tmp_path: Path) -> Iterator[Callable[[], Store]]:
    """Opens another connection (store) on one shared platform database each call."""
    opened: list[Store] = []
    schema = f"wasmlet_test_{uuid.uuid4().hex[:12]}"

    def open_one() -> Store:
        store: Store
        if kind == "sqlite":
            store = SqliteStore(tmp_path / "platform.db")
        else:
            store = PostgresStore(ADMIN_URL, schema=schema)
        opened.append(store)
        return store

    open_one().migrate()
    try:
        yield open_one
    finally:
        for store in opened:
            store.close()
        if kind == "postgres":
            with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def connect(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[], Store]]:
    with shared(request.param, tmp_path) as open_one:
        yield open_one


@pytest.fixture
def pg_connect(tmp_path: Path) -> Iterator[Callable[[], Store]]:
    with shared("postgres", tmp_path) as open_one:
        yield open_one


def test_two_claimers_never_get_the_same_job(connect: Callable[[], Store]) -> None:
    a = JobQueue(connect(), node="a", clock=time.time)
    b = JobQueue(connect(), node="b", clock=time.time)
    a.enqueue([NewJob(f"e{i}", "f", "database", b"{}") for i in range(JOBS)])
    got: dict[str, list[str]] = {"a": [], "b": []}
    deadline = time.monotonic() + BOUND_S
    # Both first claims start together and both end before either goes on, so both
    # claimers take part however the threads are scheduled on a loaded machine (one of
    # them could otherwise drain the queue alone).
    together = threading.Barrier(2, timeout=BOUND_S)

    def claimer(queue: JobQueue) -> None:
        together.wait()
        got[queue.node] += [job.id for job in queue.claim(CLAIM)]
        together.wait()
        while time.monotonic() < deadline:
            jobs = queue.claim(CLAIM)
            if not jobs and not queue.counts().get("queued"):
                return
            got[queue.node] += [job.id for job in jobs]

    threads = [threading.Thread(target=claimer, args=(q,)) for q in (a, b)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not set(got["a"]) & set(got["b"])
    assert sorted(got["a"] + got["b"]) == sorted(f"e{i}" for i in range(JOBS))
    assert a.counts() == {"running": JOBS}
    assert got["a"] and got["b"], "both claimers took part"


@pytest.mark.postgres
def test_two_dispatchers_on_one_postgres_database_run_each_job_once(
    pg_connect: Callable[[], Store], tmp_path: Path
) -> None:
    connect = pg_connect
    total = 400
    invokers = [FakeInvoker(), FakeInvoker()]
    queues = [JobQueue(connect(), node=n, clock=time.time) for n in ("a", "b")]

    async def scenario() -> None:
        app_dbs = [SqliteAppDatabase(tmp_path / f"app{i}.db") for i in range(2)]
        dispatchers = [
            Dispatcher(
                queue,
                app_db,
                Functions(),
                invoker,
                Metrics(),
                readiness=Ready(),
                concurrency=8,
                poll_s=0.01,
                clock=time.time,
            )
            for queue, app_db, invoker in zip(queues, app_dbs, invokers, strict=True)
        ]
        for dispatcher in dispatchers:
            dispatcher.start()
        try:
            queues[0].enqueue([NewJob(f"e{i}", "f", "database", b"{}") for i in range(total)])
            deadline = time.monotonic() + BOUND_S
            while queues[0].counts().get("done", 0) < total:
                assert time.monotonic() < deadline, f"only {queues[0].counts()} after {BOUND_S}s"
                await asyncio.sleep(0.05)
        finally:
            for dispatcher in dispatchers:
                await dispatcher.close()
            for app_db in app_dbs:
                app_db.close()

    asyncio.run(scenario())
    calls = invokers[0].calls + invokers[1].calls
    assert sorted(calls) == sorted(f"e{i}" for i in range(total))  # each job ran once
    assert invokers[0].calls and invokers[1].calls, "both nodes took part"
    for i in range(0, total, 37):
        row = queues[0].get(f"e{i}")
        assert row is not None and row["attempts"] == 1 and row["status"] == JobStatus.DONE
