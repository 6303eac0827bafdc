"""The store contract, run on SQLite and PostgreSQL alike."""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest

from tests.support.postgres import ADMIN_URL
from wasmlet.store.base import Store
from wasmlet.store.postgres import PostgresStore
from wasmlet.store.queries import load_migrations, load_queries


def test_migrations_apply_once_in_order(store: Store) -> None:
    expected = [m.version for m in load_migrations(store.dialect)]
    assert store.migrate() == expected
    assert store.migrate() == []
    assert store.applied_migrations() == set(expected)


def test_both_dialects_have_the_same_migrations() -> None:
    sqlite = [m.name for m in load_migrations("sqlite")]
    postgres = [m.name for m in load_migrations("postgres")]
    assert sqlite == postgres


def test_every_named_query_runs_against_the_migrated_schema(store: Store) -> None:
    """A query naming a column the migrations never made fails here."""
    store.migrate()
    params = {
        "key": "k", "wasm": b"\0asm", "now": 1.0, "name": "f", "config": "{}",
        "triggers": "[]", "enabled": True, "version": 1, "module_key": "k", "id": "j",
        "function_name": "f", "trigger_kind": "database", "payload": b"{}", "run_at": 1.0,
        "node": "n", "until": 2.0, "limit": 5, "error_type": "timeout", "error": "e",
        "request_meta": None, "result_status": 200, "result_body": b"", "reason": "r",
        "function": None, "offset": 0, "skip": "[]", "caps": "{\"f\": 1}", "after_name": "",
        # observability (queries_observability.sql)
        "attempt": 1, "status": 500, "duration_ms": 1.5, "started_at": 1.0, "log_lines": 1,
        "invocation_id": "j", "at": 1.0, "severity": 20, "level": "info", "source": "stderr",
        "message": "m", "keep": 10, "cutoff": 0.5, "min_severity": 0, "since": None,
        "request_id": None, "user_id": None, "after": 0, "before": 100, "status_min": 0,
        "status_max": 999,
        # schedules (queries_schedules.sql)
        "schedule_id": "s", "cron": "* * * * *", "timezone": "UTC", "catch_up": "latest",
        "catch_up_cap": 10, "last_run": 1.0, "next_run": 2.0, "last_job_id": None,
        "paused": False, "restarts": 0,
        # registry announcements (rolled back below, so never delivered)
        "channel": "wasmlet_registry_test",
        # several nodes (queries_cluster.sql)
        "address": "127.0.0.1:1", "wasmlet_version": "0", "workers": 2, "workers_alive": 2,
        "in_flight": 0, "bucket": 1, "calls": 1, "failures": 0, "counts_since": 0.0,
        # secrets (queries_secrets.sql)
        "sealed": b"\0sealed", "digest": "d",
        # order per row (events)
        "order_key": None, "order_seq": None,
        # versions (insert_version, list_versions, prune_versions, previous_version)
        "runtime": "wasm", "size": 4, "rolled_back_from": None, "newest": 1, "below": 2,
    }  # fmt: skip
    # A function row for the foreign keys; each query then runs in a transaction that is
    # rolled back, so the order of the queries does not matter.
    store.execute("put_module", **params)
    store.execute("insert_function", **params)
    store.execute("insert_version", **params)
    for name in load_queries(store.dialect):
        # A constraint violation still proves the statement compiled against the schema.
        with contextlib.suppress(_RolledBack, *_INTEGRITY), store.transaction():
            store.fetch_all(name, **params) if _returns_rows(store, name) else store.execute(
                name, **params
            )
            raise _RolledBack


class _RolledBack(Exception):
    pass


_INTEGRITY = (sqlite3.IntegrityError, psycopg.IntegrityError)


def _returns_rows(store: Store, name: str) -> bool:
    sql = store.sql(name).lstrip().upper()
    return sql.startswith("SELECT") or "RETURNING" in sql


def test_transaction_rolls_back_on_error(store: Store) -> None:
    store.migrate()
    with pytest.raises(RuntimeError), store.transaction():
        store.execute("put_module", key="gone", wasm=b"x", now=1.0)
        raise RuntimeError("boom")
    assert store.fetch_one("get_module", key="gone") is None
    store.execute("put_module", key="kept", wasm=b"x", now=1.0)
    row = store.fetch_one("get_module", key="kept")
    assert row is not None and bytes(row["wasm"]) == b"x"


@pytest.mark.postgres
def test_nodes_migrating_at_the_same_moment_apply_each_migration_once() -> None:
    """Six stores open and migrate one new schema at once, as nodes started together do."""
    schema = f"wasmlet_test_{uuid.uuid4().hex[:12]}"
    start = threading.Barrier(6)

    def open_and_migrate() -> list[int]:
        start.wait(30)
        with PostgresStore(ADMIN_URL, schema=schema) as store:
            return store.migrate()

    try:
        for _ in range(3):  # the race on the catalogs does not show every time
            with ThreadPoolExecutor(6) as pool:
                applied = [f.result() for f in [pool.submit(open_and_migrate) for _ in range(6)]]
            expected = [m.version for m in load_migrations("postgres")]
            assert sorted(v for versions in applied for v in versions) == expected
            with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
