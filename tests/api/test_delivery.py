"""Delivery of database events survives `kill -9` and a database that goes away."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import psycopg
import pytest

from tests.support.appdb import Backend, backend, wait_until
from tests.support.build import build_c
from tests.support.postgres import fresh_database
from tests.support.server import ServerProcess
from tests.support.tcp_proxy import TcpProxy

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
FAST_LEASE = {"WASMLET_JOB_LEASE_S": "3"}


def _deploy_recorder(db: Backend, table: str, seen: str) -> None:
    db.app_rows(f"CREATE TABLE {table} (id INTEGER PRIMARY KEY)")
    db.app_rows(f"CREATE TABLE {seen} (event_id TEXT NOT NULL)")
    record = f"INSERT INTO {seen} (event_id) VALUES ({db.event_field('id')})"
    response = db.server.deploy(
        "recorder",
        build_c("on_user_created"),
        {"env": {"PROFILE_SQL": record, "SUCCEED": "1"}},
        [{"type": "database", "table": table, "events": ["INSERT"]}],
    )
    assert response.status_code == 201, response.text


def _distinct_seen(db: Backend, seen: str) -> int:
    return int(db.app_rows(f"SELECT COUNT(DISTINCT event_id) FROM {seen}")[0][0])


@pytest.mark.parametrize("kind", BACKENDS)
def test_kill_9_with_1000_events_pending(kind: str, tmp_path: Path) -> None:
    with backend(kind, tmp_path / "data", **FAST_LEASE) as db:
        _deploy_recorder(db, "items", "seen")
        mark = "%s"
        db.app_rows(
            "INSERT INTO items (id) SELECT * FROM (VALUES "
            + ", ".join(f"({i})" for i in range(600))
            + ") AS v"
            if db.pg is not None
            else "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 599) "
            "INSERT INTO items (id) SELECT i FROM n"
        )
        for i in range(600, 1000):
            db.app_rows(f"INSERT INTO items (id) VALUES ({mark})", (i,))
        assert db.server.process is not None
        db.server.process.kill()  # kill -9: no shutdown of any kind
        db.server.process.wait()
        delivered_before = _distinct_seen(db, "seen")
        for i in range(1000, 1100):  # written while the server is down
            db.app_rows(f"INSERT INTO items (id) VALUES ({mark})", (i,))

        restarted = ServerProcess(db.server.data_dir, db.server.env)
        restarted.start()
        try:
            wait_until(lambda: _distinct_seen(db, "seen") == 1100, 120, "all 1,100 events")
        finally:
            restarted.stop()
        db.server.stop()
    assert delivered_before < 1000, "the kill came too late to leave events pending"


@pytest.mark.postgres
def test_postgres_unreachable_then_back(tmp_path: Path) -> None:
    """The server reaches PostgreSQL through a proxy the test cuts and restores."""
    proxy = TcpProxy("127.0.0.1", 5432)
    proxy.start()
    try:
        with fresh_database() as pg:
            via_proxy = pg.url.replace(":5432/", f":{proxy.port}/")
            env = {"WASMLET_DATABASE_URL": via_proxy, "WASMLET_APP_ROLE": pg.role, **FAST_LEASE}
            with backend("sqlite", tmp_path / "data", **env) as db:
                db.pg = pg  # app-side SQL goes straight to PostgreSQL, not through the proxy
                _run_outage(db, proxy)
    finally:
        proxy.close()


def _run_outage(db: Backend, proxy: TcpProxy) -> None:
    server = db.server
    assert server.deploy("sql", build_c("db_exec")).status_code == 201
    _deploy_recorder(db, "items", "seen")
    db.app_rows("INSERT INTO items (id) VALUES (1)")
    wait_until(lambda: _distinct_seen(db, "seen") == 1, what="the first event")
    server.deploy("plain", build_c("hello"))
    assert server.invoke("plain").status_code == 200

    proxy.cut()
    time.sleep(1.1)  # past the registry cache
    down = server.invoke("sql", b"SELECT 1")
    assert down.status_code == 503, down.text
    assert down.json()["error"]["type"] == "db_unavailable"
    assert down.headers["retry-after"] == "1"
    # Changes committed while the platform cannot reach its database are kept.
    for i in range(2, 12):
        db.app_rows("INSERT INTO items (id) VALUES (%s)", (i,))
    assert httpx.get(server.url + "/health").status_code in (200, 503)

    proxy.restore()
    wait_until(lambda: server.invoke("sql", b"SELECT 1").status_code == 200, 30, "recovery")
    wait_until(lambda: _distinct_seen(db, "seen") == 11, 60, "all 11 events")
    assert server.invoke("plain").status_code == 200
    assert json.loads(server.invoke("sql", b"SELECT COUNT(*) AS n FROM items").text)["rows"] == [
        {"n": 11}
    ]
    with psycopg.connect(db.pg.url if db.pg else "") as conn:
        statuses = conn.execute("SELECT status, COUNT(*) FROM wasmlet.jobs GROUP BY status")
        assert dict(statuses.fetchall()) == {"done": 11}


@pytest.mark.postgres
def test_application_database_down_breaker_fails_fast_then_closes(tmp_path: Path) -> None:
    """Only the application's connection goes through the proxy: the platform keeps its
    database, functions that query fail fast with 503, the others run on."""
    proxy = TcpProxy("127.0.0.1", 5432)
    proxy.start()
    try:
        with fresh_database() as pg:
            with psycopg.connect(pg.url, autocommit=True) as admin:
                admin.execute(f'CREATE ROLE "{pg.role}" LOGIN')
                admin.execute(f'GRANT USAGE, CREATE ON SCHEMA public TO "{pg.role}"')
            app_url = pg.url.replace("postgres@", f"{pg.role}@").replace(
                ":5432/", f":{proxy.port}/"
            )
            env = {
                **pg.env(),
                "WASMLET_APP_DATABASE_URL": app_url,
                "WASMLET_DB_BREAKER_COOLDOWN_S": "1",
            }
            with backend("sqlite", tmp_path / "data", **env) as db:
                server = db.server
                # The function's own breaker would open too after enough 503s; this test
                # is about the database connection's breaker.
                server.deploy("sql", build_c("db_exec"), {"circuit_breaker": {"enabled": False}})
                server.deploy("plain", build_c("hello"))
                assert server.invoke("sql", b"SELECT 1 AS one").status_code == 200

                proxy.cut()
                for _ in range(3):
                    down = server.invoke("sql", b"SELECT 1")
                    assert down.status_code == 503, down.text
                    assert down.json()["error"]["type"] == "db_unavailable"
                server.wait_for_log(operation="db_breaker", message="database breaker open")
                fast = server.invoke("sql", b"SELECT 1")  # refused by the breaker, not a connect
                assert fast.status_code == 503 and "circuit open" in fast.text
                assert server.invoke("plain").status_code == 200  # no database, no problem

                proxy.restore()
                wait_until(lambda: server.invoke("sql", b"SELECT 1").status_code == 200, 60)
                server.wait_for_log(operation="db_breaker", message="database breaker closed")
    finally:
        proxy.close()
