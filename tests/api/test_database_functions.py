"""Functions and the application database, through the real server, on SQLite and
PostgreSQL: the spec's failure scenarios 3 and 4, isolation, triggers, delivery."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from tests.support.appdb import Backend, backend, wait_until
from tests.support.build import build_c

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(scope="module", params=BACKENDS)
def db(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Backend]:
    with backend(request.param, tmp_path_factory.mktemp("db-server")) as b:
        assert b.server.deploy("sql", build_c("db_exec")).status_code == 201
        yield b


def sql(db: Backend, statement: str, *params: object) -> httpx.Response:
    payload = statement.encode() + (b"\n" + json.dumps(list(params)).encode() if params else b"")
    return db.server.invoke("sql", payload)


def test_db_query_binds_parameters_and_returns_rows(db: Backend, fname: str) -> None:
    table = fname.replace("-", "_")
    assert sql(db, f"CREATE TABLE {table} (id INTEGER PRIMARY KEY, name TEXT)").status_code == 200
    inserted = sql(db, f"INSERT INTO {table} (id, name) VALUES ($1, $2) RETURNING id", 1, "a'b")
    assert inserted.json() == {"rows": [{"id": 1}], "row_count": 1}
    assert db.app_rows(f"SELECT name FROM {table}") == [("a'b",)]


def test_row_count_is_the_affected_count_of_insert_update_delete(db: Backend, fname: str) -> None:
    table = fname.replace("-", "_")
    assert sql(db, f"CREATE TABLE {table} (id INTEGER PRIMARY KEY, n INTEGER)").status_code == 200
    inserted = sql(db, f"INSERT INTO {table} (id, n) VALUES (1, 0), (2, 0), (3, 0)")
    assert inserted.json() == {"rows": [], "row_count": 3}
    assert sql(db, f"UPDATE {table} SET n = n + 1 WHERE id < $1", 3).json()["row_count"] == 2
    assert sql(db, f"DELETE FROM {table}").json() == {"rows": [], "row_count": 3}


def test_scenario_4_missing_table_is_500_host_function_error(db: Backend) -> None:
    before = db.server.metric(
        "functions_errors_total", name="sql", error_type="host_function_error"
    )
    response = sql(db, "SELECT * FROM nonexistent_table")
    assert response.status_code == 500
    error = response.json()["error"]
    assert error["type"] == "host_function_error"
    assert "nonexistent_table" in error["message"]
    log = db.server.wait_for_log(request_id=response.headers["x-request-id"], operation="invoke")
    assert "nonexistent_table" in log["error"]
    assert (
        db.server.metric("functions_errors_total", name="sql", error_type="host_function_error")
        == before + 1
    )


def test_a_function_cannot_see_the_platform_tables(db: Backend) -> None:
    attempts = (
        ["SELECT * FROM _wasmlet_outbox", "ATTACH DATABASE 'platform.db' AS p"]
        if db.pg is None
        else ["SELECT * FROM wasmlet.functions", "SELECT * FROM wasmlet.jobs"]
    )
    for statement in attempts:
        response = sql(db, statement)
        assert response.status_code == 500, statement
        assert response.json()["error"]["type"] == "host_function_error"
    # The platform itself still works: this very function is listed.
    listed = httpx.get(
        db.server.url + "/functions/v1/functions", headers=db.server.service_headers()
    )
    assert "sql" in {f["name"] for f in listed.json()["functions"]}


def _users_and_profiles(db: Backend, prefix: str) -> tuple[str, str]:
    users, profiles = f"{prefix}_users", f"{prefix}_profiles"
    db.app_rows(f"CREATE TABLE {users} (id INTEGER PRIMARY KEY, email TEXT NOT NULL)")
    db.app_rows(f"CREATE TABLE {profiles} (user_id INTEGER NOT NULL, email TEXT)")
    return users, profiles


def test_scenario_3_trigger_function_fails_after_commit(db: Backend, fname: str) -> None:
    users, profiles = _users_and_profiles(db, fname.replace("-", "_"))
    profile_sql = (
        f"INSERT INTO {profiles} (user_id, email) VALUES "
        f"({db.event_field('record.id', cast_int=True)}, {db.event_field('record.email')})"
    )
    deployed = db.server.deploy(
        fname,
        build_c("on_user_created"),
        {"env": {"PROFILE_SQL": profile_sql}},
        [{"type": "database", "table": users, "events": ["INSERT"]}],
    )
    assert deployed.status_code == 201, deployed.text
    errors = db.server.metric("functions_errors_total", name=fname, error_type="function_error")

    db.app_rows(f"INSERT INTO {users} (id, email) VALUES (%s, %s)", (1, "user@example.com"))

    log = db.server.wait_for_log(timeout_s=60, operation="invoke", function=fname)
    assert log["level"] == "ERROR"
    assert log["trigger"] == "database"
    assert "Email service down" in log["stderr"]
    # Non-transactional: the user and the profile both stay committed.
    assert db.app_rows(f"SELECT id, email FROM {users}") == [(1, "user@example.com")]
    assert db.app_rows(f"SELECT user_id, email FROM {profiles}") == [(1, "user@example.com")]
    wait_until(
        lambda: (
            db.server.metric("functions_errors_total", name=fname, error_type="function_error")
            == errors + 1
        ),
        what="the failure to be counted",
    )


def test_event_payload_is_shaped_like_supabase_webhooks(db: Backend, fname: str) -> None:
    table, seen = f"{fname.replace('-', '_')}_t", f"{fname.replace('-', '_')}_seen"
    db.app_rows(f"CREATE TABLE {table} (id INTEGER PRIMARY KEY, v TEXT)")
    db.app_rows(f"CREATE TABLE {seen} (body TEXT NOT NULL)")
    db.server.deploy(
        fname,
        build_c("on_user_created"),
        {"env": {"PROFILE_SQL": f"INSERT INTO {seen} (body) VALUES ($1)", "SUCCEED": "1"}},
        [{"type": "database", "table": table}],
    )
    db.app_rows(f"INSERT INTO {table} (id, v) VALUES (%s, %s)", (5, "a"))
    db.app_rows(f"UPDATE {table} SET v = %s WHERE id = %s", ("b", 5))
    db.app_rows(f"DELETE FROM {table} WHERE id = %s", (5,))
    wait_until(lambda: len(db.app_rows(f"SELECT body FROM {seen}")) == 3, what="3 events")
    events = sorted(
        (json.loads(row[0]) for row in db.app_rows(f"SELECT body FROM {seen}")),
        key=lambda e: ["INSERT", "UPDATE", "DELETE"].index(e["type"]),
    )
    schema = "main" if db.pg is None else "public"
    assert [(e["type"], e["table"], e["schema"]) for e in events] == [
        ("INSERT", table, schema), ("UPDATE", table, schema), ("DELETE", table, schema),
    ]  # fmt: skip
    assert events[0]["record"] == {"id": 5, "v": "a"} and events[0]["old_record"] is None
    assert events[1]["old_record"] == {"id": 5, "v": "a"} and events[1]["record"]["v"] == "b"
    assert events[2]["record"] is None and events[2]["old_record"] == {"id": 5, "v": "b"}
    assert len({e["id"] for e in events}) == 3


@pytest.mark.parametrize(
    "trigger",
    [
        {"type": "database", "table": "no_such_table", "events": ["INSERT"]},
        {"type": "database", "table": "{table}", "events": ["TRUNCATE"]},
        {"type": "database", "table": "{table}", "events": []},
        {"type": "database", "table": "x; DROP TABLE y", "events": ["INSERT"]},
        {"type": "database"},
    ],
    ids=["missing-table", "bad-event", "no-events", "bad-name", "no-table"],
)
def test_invalid_database_trigger_is_400(
    db: Backend, fname: str, trigger: dict[str, object]
) -> None:
    table = f"{fname.replace('-', '_')}_t"
    db.app_rows(f"CREATE TABLE {table} (id INTEGER PRIMARY KEY)")
    concrete = {k: (v.format(table=table) if isinstance(v, str) else v) for k, v in trigger.items()}
    response = db.server.deploy(fname, build_c("hello"), None, [concrete])
    assert response.status_code == 400, response.text
    assert response.json()["error"]["type"] == "invalid_trigger"


def _capture_triggers(db: Backend) -> list[str]:
    if db.pg is None:
        rows = db.app_rows(
            "SELECT name FROM sqlite_master WHERE type = 'trigger' AND name LIKE '\\_wasmlet\\_%' "
            "ESCAPE '\\'"
        )
    else:
        rows = db.app_rows(
            "SELECT tgname FROM pg_trigger WHERE tgname LIKE %s AND NOT tgisinternal",
            ("\\_wasmlet\\_%",),
        )
    return sorted(str(row[0]) for row in rows)


def test_redeploy_and_delete_leave_no_orphaned_triggers(db: Backend, fname: str) -> None:
    a, b = f"{fname.replace('-', '_')}_a", f"{fname.replace('-', '_')}_b"
    db.app_rows(f"CREATE TABLE {a} (id INTEGER PRIMARY KEY)")
    db.app_rows(f"CREATE TABLE {b} (id INTEGER PRIMARY KEY)")
    before = set(_capture_triggers(db))
    db.server.deploy(fname, build_c("hello"), None, [{"type": "database", "table": a}])
    first = set(_capture_triggers(db)) - before
    assert first
    db.server.deploy(
        fname, build_c("hello"), None, [{"type": "database", "table": b, "events": ["DELETE"]}]
    )
    second = set(_capture_triggers(db)) - before
    assert second and not (second & first)
    httpx.delete(
        f"{db.server.url}/functions/v1/functions/{fname}", headers=db.server.service_headers()
    )
    assert set(_capture_triggers(db)) == before
