"""The store under concurrent threads: a held-up call holds up no other thread's call,
and a PostgreSQL connection killed under the pool is replaced, not reported."""

from __future__ import annotations

import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from tests.support.postgres import ADMIN_URL
from wasmlet.store.base import Store
from wasmlet.store.postgres import PostgresStore

HOLD_S = 3.0
PROMPT_S = 1.0  # generous: the other call takes milliseconds when nothing holds it up


@contextmanager
def writes_held(store: Store) -> Iterator[None]:
    """Another connection (another process, as far as the store knows) holds the lock a
    write to `scheduler_heartbeats` needs, until the block ends."""
    if isinstance(store, PostgresStore):
        with psycopg.connect(ADMIN_URL) as conn:
            conn.execute(
                sql.SQL("LOCK TABLE {}.scheduler_heartbeats IN ACCESS EXCLUSIVE MODE").format(
                    sql.Identifier(store.schema)
                )
            )
            yield
            conn.rollback()
        return
    path: Path = store.path  # type: ignore[attr-defined]
    other = sqlite3.connect(path, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")  # SQLite's one writer: this connection
        yield
        other.execute("ROLLBACK")
    finally:
        other.close()


@pytest.mark.timeout(60)  # one connection behind one lock: the read waits for the write
def test_a_held_up_write_does_not_hold_up_another_threads_read(store: Store) -> None:
    store.migrate()
    done = threading.Event()
    errors: list[BaseException] = []

    def held_write() -> None:
        try:
            store.execute("heartbeat", node="n1", now=time.time(), restarts=0)
        except BaseException as exc:
            errors.append(exc)
        finally:
            done.set()

    with writes_held(store):
        writer = threading.Thread(target=held_write, daemon=True)
        writer.start()
        time.sleep(0.3)  # the write is waiting on the lock now
        started = time.monotonic()
        assert store.fetch_all("list_nodes") == []
        took = time.monotonic() - started
        assert not done.is_set(), "the write should still be held up"
        deadline = time.monotonic() + HOLD_S
        while time.monotonic() < deadline and not done.is_set():
            time.sleep(0.05)  # the lock is held the whole time: the write waits
        assert not done.is_set()
    assert took < PROMPT_S, f"a read waited {took:.2f} s behind another thread's held write"
    assert done.wait(30), "the write never finished once the lock was released"
    assert errors == []
    assert store.fetch_all("scheduler_heartbeats_since", since=0)[0]["node"] == "n1"


@pytest.fixture
def tagged_pg_store() -> Iterator[tuple[PostgresStore, str]]:
    """A PostgreSQL store whose connections carry their own `application_name`."""
    tag = f"wasmlet-pool-test-{uuid.uuid4().hex[:10]}"
    schema = f"wasmlet_test_{uuid.uuid4().hex[:12]}"
    pg_store = PostgresStore(f"{ADMIN_URL}?application_name={tag}", schema=schema, pool_size=4)
    try:
        pg_store.migrate()
        yield pg_store, tag
    finally:
        pg_store.close()
        with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


def backends(tag: str) -> set[int]:
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE application_name = %s", [tag]
        ).fetchall()
    return {int(row[0]) for row in rows}


@pytest.mark.postgres
@pytest.mark.timeout(60)
def test_calls_from_several_threads_run_on_several_connections_at_once(
    tagged_pg_store: tuple[PostgresStore, str],
) -> None:
    """Four transactions held open at once (one per thread) each hold a connection; a
    fifth thread's call is not held up behind them while a connection is free."""
    store, _ = tagged_pg_store
    inside = threading.Barrier(4)  # 3 holders and the test
    release = threading.Event()

    def hold() -> None:
        with store.transaction():
            store.fetch_all("list_nodes")
            inside.wait(10)
            release.wait(10)

    holders = [threading.Thread(target=hold, daemon=True) for _ in range(3)]
    for thread in holders:
        thread.start()
    inside.wait(10)  # three transactions open, each on its own connection
    started = time.monotonic()
    assert store.fetch_all("list_functions") == []
    took = time.monotonic() - started
    release.set()
    for thread in holders:
        thread.join(10)
    assert took < PROMPT_S, f"a call waited {took:.2f} s behind other threads' transactions"
    assert store.pool_stats["pool_size"] >= 4


@pytest.mark.postgres
def test_a_killed_connection_is_replaced_and_the_next_call_succeeds(
    tagged_pg_store: tuple[PostgresStore, str],
) -> None:
    store, tag = tagged_pg_store
    store.fetch_all("list_functions")
    before = backends(tag)
    assert before, "the pool holds no connection"
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s",
            [tag],
        )
    deadline = time.monotonic() + 10
    while backends(tag) & before and time.monotonic() < deadline:
        time.sleep(0.05)
    # Every connection the pool held is dead; the next calls get live ones.
    for _ in range(5):
        assert store.fetch_all("list_functions") == []
    with store.transaction():
        store.execute("heartbeat", node="n1", now=time.time(), restarts=0)
    after = backends(tag)
    assert after and not (after & before)
