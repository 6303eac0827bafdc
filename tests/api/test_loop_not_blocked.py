"""While a platform-store query is held up, the server's event loop is not: `/health`
answers at once while an invocation waits on the store. On PostgreSQL the held query
is the registry's read of the function's record (a cache miss); on SQLite, where WAL
readers are never held up, it is an asynchronous invocation's write to the queue."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import psycopg
import pytest

from tests.conftest import ServerFactory
from tests.support.postgres import PgDatabase, fresh_database
from tests.support.server import ServerProcess
from tests.support.wasmgen import says

HOLD_S = 3.0
PROMPT_S = 1.0  # generous: /health takes milliseconds


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest) -> Iterator[PgDatabase | None]:
    if request.param == "sqlite":
        yield None
        return
    with fresh_database() as db:
        yield db


@contextmanager
def store_held(server: ServerProcess, backend: PgDatabase | None) -> Iterator[None]:
    """Another connection keeps the server's store from reading a function's record
    (PostgreSQL) or from writing at all (SQLite: this connection is the one writer)."""
    if backend is not None:
        with psycopg.connect(backend.url) as conn:
            # The record's table, not one the scheduler's tick reads (`functions`).
            conn.execute("LOCK TABLE wasmlet.function_versions IN ACCESS EXCLUSIVE MODE")
            yield
            conn.rollback()
        return
    other = sqlite3.connect(server.data_dir / "platform.db", isolation_level=None, timeout=30)
    try:
        other.execute("BEGIN IMMEDIATE")
        yield
        other.execute("ROLLBACK")
    finally:
        other.close()


@pytest.mark.timeout(180)
def test_health_answers_while_a_store_query_is_held(
    start_server: ServerFactory, backend: PgDatabase | None
) -> None:
    env = backend.env() if backend is not None else {}
    with start_server(**env) as server:
        assert server.deploy("held", says("hi")).status_code == 201
        assert server.invoke("held").status_code == 200
        time.sleep(1.5)  # past the registry's cache TTL: the next call reads the store
        answers: list[int] = []

        def invoke() -> None:
            if backend is None:
                answers.append(
                    server.invoke("held", headers={"Prefer": "respond-async"}).status_code
                )
            else:
                answers.append(server.invoke("held").status_code)

        caller = threading.Thread(target=invoke, daemon=True)
        with store_held(server, backend):
            caller.start()
            time.sleep(0.5)  # the invocation is waiting on the store now
            slowest = 0.0
            deadline = time.monotonic() + HOLD_S
            while time.monotonic() < deadline:
                started = time.monotonic()
                response = httpx.get(f"{server.url}/health", timeout=30)
                slowest = max(slowest, time.monotonic() - started)
                # 503 is an answer too: the scheduler's tick waits on the same lock.
                assert response.status_code in (200, 503)
                time.sleep(0.2)
            assert answers == [], "the invocation should still wait on the store"
        caller.join(60)
        assert answers == [200 if backend is not None else 202]
        assert slowest < PROMPT_S, f"/health took {slowest:.2f} s while a store read was held"
        assert not [line for line in server.lines if "store query on the event loop" in line]
