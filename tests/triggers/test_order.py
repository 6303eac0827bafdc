"""Order per row, end to end on both backends: real capture triggers, the relay and a
real dispatcher with room for many runs at once. Each row's changes run one at a time,
in the order they committed; different rows run side by side."""

from __future__ import annotations

import asyncio
import json
import random
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.postgres import fresh_database
from tests.triggers.test_dispatcher import Functions, Ready
from wasmlet.appdb.base import AppDatabase, TableRef
from wasmlet.appdb.postgres import PostgresAppDatabase
from wasmlet.appdb.sqlite import SqliteAppDatabase
from wasmlet.invocation.invoker import InvocationRequest, InvocationResult
from wasmlet.runtime.outcome import Outcome, OutcomeKind
from wasmlet.store.base import Store
from wasmlet.store.postgres import PostgresStore
from wasmlet.store.sqlite import SqliteStore
from wasmlet.telemetry.metrics import Metrics
from wasmlet.triggers.dispatcher import Dispatcher
from wasmlet.triggers.queue import JobQueue

ROWS = 4
UPDATES = 6
BOUND_S = 60.0  # against a hang only


@dataclass
class Databases:
    app: AppDatabase
    store: Store
    connect: Callable[[], Any]  # the user's application connection (commits by hand)
    placeholder: str


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def dbs(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Databases]:
    if request.param == "sqlite":
        app_db = SqliteAppDatabase(tmp_path / "app.db")
        store = SqliteStore(tmp_path / "platform.db")
        store.migrate()
        try:
            yield Databases(app_db, store, lambda: sqlite3.connect(tmp_path / "app.db"), "?")
        finally:
            app_db.close()
            store.close()
        return
    with fresh_database() as pg:
        pg_store = PostgresStore(pg.url)
        pg_store.migrate()
        pg_app = PostgresAppDatabase(pg.url, app_role=pg.role)
        try:
            yield Databases(pg_app, pg_store, pg.connect_transactional, "%s")
        finally:
            pg_app.close()
            pg_store.close()


class Recorder:
    """Runs nothing: notes each row's values in the order they start, and whether two
    changes of one row ever ran at once."""

    def __init__(self) -> None:
        self.seen: dict[int, list[int]] = {}
        self.running: set[int] = set()
        self.overlaps = 0
        self.rng = random.Random(7)

    async def invoke(self, request: InvocationRequest) -> InvocationResult:
        record = json.loads(request.payload)["record"]
        row, value = int(record["id"]), int(record["v"])
        if row in self.running:
            self.overlaps += 1
        self.running.add(row)
        self.seen.setdefault(row, []).append(value)
        await asyncio.sleep(self.rng.uniform(0.0, 0.01))
        self.running.discard(row)
        outcome = Outcome(OutcomeKind.OK, stdout=b"ok")
        return InvocationResult(200, [], b"ok", 1.0, outcome)


def test_changes_of_one_row_run_one_at_a_time_in_commit_order(dbs: Databases) -> None:
    p = dbs.placeholder
    conn = dbs.connect()
    try:
        conn.execute("CREATE TABLE items (id INTEGER PRIMARY KEY, v INTEGER NOT NULL)")
        conn.commit()
        dbs.app.install_trigger(
            "f", TableRef(dbs.app.default_schema, "items"), ["INSERT", "UPDATE"]
        )
        for row in range(ROWS):
            conn.execute(f"INSERT INTO items (id, v) VALUES ({p}, 0)", (row,))
            conn.commit()
        for value in range(1, UPDATES + 1):
            for row in range(ROWS):
                conn.execute(f"UPDATE items SET v = {p} WHERE id = {p}", (value, row))
                conn.commit()
    finally:
        conn.close()
    queue = JobQueue(dbs.store, node="a", clock=time.time)
    recorder = Recorder()
    total = ROWS * (UPDATES + 1)

    async def scenario() -> None:
        dispatcher = Dispatcher(
            queue, dbs.app, Functions(), recorder, Metrics(),
            readiness=Ready(), concurrency=16, poll_s=0.01, clock=time.time,
        )  # fmt: skip
        dispatcher.start()
        try:
            deadline = time.monotonic() + BOUND_S
            while queue.counts().get("done", 0) < total:
                assert time.monotonic() < deadline, f"only {queue.counts()} after {BOUND_S}s"
                await asyncio.sleep(0.02)
        finally:
            await dispatcher.close()

    asyncio.run(scenario())
    expected = list(range(UPDATES + 1))
    assert recorder.seen == {row: expected for row in range(ROWS)}
    assert recorder.overlaps == 0
