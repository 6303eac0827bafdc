"""db_query's database on SQLite and PostgreSQL: queries, isolation, limits, capture."""

from __future__ import annotations

import json
import time

import pytest

from tests.appdb.conftest import AppDb
from wasmlet.appdb.base import QueryError, QueryErrorType, TableRef

MB = 1024 * 1024


def run(app: AppDb, sql: str, *params: object, seconds: float = 5) -> dict[str, object]:
    result: dict[str, object] = json.loads(
        app.db.query(sql, list(params), time.monotonic() + seconds, MB)
    )
    return result


def refused(app: AppDb, sql: str, *params: object, seconds: float = 5) -> QueryError:
    with pytest.raises(QueryError) as raised:
        run(app, sql, *params, seconds=seconds)
    return raised.value


def users(app: AppDb) -> TableRef:
    run(app, "CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT NOT NULL)")
    return TableRef(app.db.default_schema, "users")


def test_parameters_are_bound_and_rows_come_back_as_json(app: AppDb) -> None:
    users(app)
    inserted = run(app, "INSERT INTO users (id, email) VALUES ($1, $2) RETURNING id", 7, "a@b.c")
    assert inserted == {"rows": [{"id": 7}], "row_count": 1}
    tricky = "x'); DROP TABLE users; --"
    run(app, "INSERT INTO users (id, email) VALUES ($1, $2)", 8, tricky)
    rows = run(app, "SELECT id, email FROM users ORDER BY id")["rows"]
    assert rows == [{"id": 7, "email": "a@b.c"}, {"id": 8, "email": tricky}]


def test_row_count_is_the_affected_count_of_writes_and_the_rows_of_reads(app: AppDb) -> None:
    users(app)
    inserted = run(app, "INSERT INTO users (id, email) VALUES (1, 'a'), (2, 'b'), (3, 'c')")
    assert inserted == {"rows": [], "row_count": 3}
    assert run(app, "UPDATE users SET email = email || '!' WHERE id > 1")["row_count"] == 2
    assert run(app, "UPDATE users SET email = 'x' WHERE id > 99")["row_count"] == 0
    returned = run(app, "UPDATE users SET email = 'y' WHERE id < 3 RETURNING id")
    assert returned["row_count"] == 2 and len(returned["rows"]) == 2  # type: ignore[arg-type]
    assert run(app, "SELECT id FROM users WHERE id > 1")["row_count"] == 2
    assert run(app, "DELETE FROM users WHERE id = 3")["row_count"] == 1
    assert run(app, "SELECT id FROM users")["row_count"] == 2


def test_each_call_commits_on_its_own(app: AppDb) -> None:
    users(app)
    run(app, "INSERT INTO users (id, email) VALUES ($1, $2)", 1, "kept@x")
    refused(app, "INSERT INTO users (id, email) VALUES ($1, $2)", 1, "duplicate@x")
    with app.app_connect() as conn:
        cursor = conn.cursor()
        cursor.execute("SELECT email FROM users")
        assert cursor.fetchall() == [("kept@x",)]


@pytest.mark.parametrize(
    ("sql", "error_type"),
    [
        ("SELECT * FROM nonexistent_table", QueryErrorType.QUERY_ERROR),
        ("SELEC 1", QueryErrorType.QUERY_ERROR),
        ("SELECT 1; SELECT 2", QueryErrorType.QUERY_ERROR),
    ],
    ids=["missing-table", "syntax", "two-statements"],
)
def test_bad_queries_are_structured_errors(
    app: AppDb, sql: str, error_type: QueryErrorType
) -> None:
    error = refused(app, sql)
    assert error.error_type is error_type
    body = json.loads(error.to_json())
    assert body["error"]["type"] == error_type
    assert body["error"]["message"]


def test_a_query_cannot_outlive_the_time_budget(app: AppDb) -> None:
    slow = (
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c"
        if app.db.dialect == "sqlite"
        else "SELECT pg_sleep(600)"
    )
    started = time.monotonic()
    error = refused(app, slow, seconds=0.3)
    assert error.error_type is QueryErrorType.TIMEOUT
    assert time.monotonic() - started < 60  # cut by the budget: the query would not end


def test_results_are_capped(app: AppDb) -> None:
    users(app)
    for i in range(50):
        run(app, "INSERT INTO users (id, email) VALUES ($1, $2)", i, "x" * 100)
    with pytest.raises(QueryError) as raised:
        app.db.query("SELECT * FROM users", [], time.monotonic() + 5, 1024)
    assert raised.value.error_type is QueryErrorType.TOO_LARGE


def forged_event(app: AppDb) -> str:
    """A complete, well-formed outbox row: only the guard can stop it (no NOT NULL to trip)."""
    table = "_wasmlet_outbox" if app.db.dialect == "sqlite" else "wasmlet.outbox"
    return (
        f"INSERT INTO {table} (event_id, function_name, op, schema_name, table_name, "
        f"record, old_record, created_at) VALUES ('forged', 'f', 'INSERT', "
        f"'{app.db.default_schema}', 'users', '{{\"email\": \"forged@x\"}}', NULL, 0)"
    )


def test_platform_tables_are_out_of_reach(app: AppDb) -> None:
    ref = users(app)
    app.db.install_trigger("f", ref, ["INSERT"])
    if app.db.dialect == "sqlite":
        attempts = [
            "SELECT * FROM _wasmlet_outbox",
            "DELETE FROM _wasmlet_outbox",
            "ATTACH DATABASE 'platform.db' AS platform",
            "PRAGMA writable_schema = 1",
            f"DROP TRIGGER {app.db.trigger_names()[0]}",
            "DROP TABLE _wasmlet_outbox",
        ]
    else:
        attempts = [
            "SELECT * FROM wasmlet.functions",
            "SELECT * FROM wasmlet.outbox",
            "DELETE FROM wasmlet.jobs",
            "UPDATE wasmlet.functions SET enabled = false",
            "DO $$ BEGIN RESET ROLE; DELETE FROM wasmlet.jobs; END $$",
            "SET ROLE postgres",
        ]
    for sql in attempts:
        error = refused(app, sql)
        assert error.error_type in (QueryErrorType.FORBIDDEN, QueryErrorType.QUERY_ERROR), sql
    assert refused(app, forged_event(app)).error_type is QueryErrorType.FORBIDDEN
    assert app.db.fetch_outbox(10) == []
    # The platform's own trigger still writes the outbox for the function's inserts.
    run(app, "INSERT INTO users (id, email) VALUES ($1, $2)", 1, "a@b")
    assert [event.record["email"] for event in app.db.fetch_outbox(10)] == ["a@b"]


def test_events_exist_only_for_committed_changes(app: AppDb) -> None:
    """2,000 transactions, half rolled back: the outbox holds the committed ones exactly."""
    ref = users(app)
    app.db.install_trigger("on-user", ref, ["INSERT", "UPDATE", "DELETE"])
    mark = app.placeholder
    committed = set()
    with app.app_connect() as conn:
        cursor = conn.cursor()
        for i in range(2000):
            cursor.execute(f"INSERT INTO users (id, email) VALUES ({mark}, {mark})", (i, f"u{i}"))
            if i % 2:
                conn.rollback()
            else:
                conn.commit()
                committed.add(i)
    events = app.db.fetch_outbox(5000)
    assert sorted(event.record["id"] for event in events) == sorted(committed)
    assert all(event.op == "INSERT" and event.old_record is None for event in events)
    assert len({event.event_id for event in events}) == len(events)


def test_update_and_delete_carry_the_old_record(app: AppDb) -> None:
    ref = users(app)
    app.db.install_trigger("f", ref, ["UPDATE", "DELETE"])
    run(app, "INSERT INTO users (id, email) VALUES ($1, $2)", 1, "old@x")
    run(app, "UPDATE users SET email = $1 WHERE id = $2", "new@x", 1)
    run(app, "DELETE FROM users WHERE id = $1", 1)
    update, delete = app.db.fetch_outbox(10)
    assert update.payload()["type"] == "UPDATE"
    assert update.record == {"id": 1, "email": "new@x"}
    assert update.old_record == {"id": 1, "email": "old@x"}
    assert delete.record is None and delete.old_record == {"id": 1, "email": "new@x"}
    assert delete.payload()["table"] == "users"


def test_dropping_a_functions_triggers_leaves_none(app: AppDb) -> None:
    ref = users(app)
    run(app, "CREATE TABLE orders (id INTEGER PRIMARY KEY)")
    app.db.install_trigger("a", ref, ["INSERT"])
    app.db.install_trigger("a", TableRef(ref.schema, "orders"), ["INSERT", "DELETE"])
    app.db.install_trigger("b", ref, ["INSERT"])
    before = app.db.trigger_names()
    assert app.db.drop_triggers("a") >= 2
    after = app.db.trigger_names()
    assert len(after) == 1 and set(after) < set(before)
    run(app, "INSERT INTO users (id, email) VALUES ($1, $2)", 1, "x")
    assert [e.function_name for e in app.db.fetch_outbox(10)] == ["b"]


def test_the_app_can_drop_a_table_that_has_capture_triggers(app: AppDb) -> None:
    ref = users(app)
    app.db.install_trigger("f", ref, ["INSERT"])
    run(app, "DROP TABLE users")
    assert app.db.trigger_names() == []
