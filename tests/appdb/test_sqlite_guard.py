"""A function's SQL on SQLite: allow-listed functions and modules, SQLite limits, nothing of
the platform's schema visible, no name in its namespace (issue 10, item 1)."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from wasmlet.appdb.base import MAX_SQL_BYTES, QueryError, QueryErrorType, TableRef
from wasmlet.appdb.sqlite import SqliteAppDatabase

MB = 1024 * 1024


@pytest.fixture
def db(tmp_path: Path) -> Iterator[SqliteAppDatabase]:
    database = SqliteAppDatabase(tmp_path / "app.db")
    try:
        database.query(
            "CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT)", [], time.monotonic() + 5, MB
        )
        database.install_trigger("f", TableRef("main", "users"), ["INSERT"])
        yield database
    finally:
        database.close()


def run(db: SqliteAppDatabase, sql: str, *params: object) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = json.loads(
        db.query(sql, list(params), time.monotonic() + 5, MB)
    )["rows"]
    return rows


def refused(db: SqliteAppDatabase, sql: str, *params: object) -> QueryError:
    with pytest.raises(QueryError) as raised:
        run(db, sql, *params)
    return raised.value


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT hex(fts3_tokenizer('simple'))",
        "SELECT fts3_tokenizer('x', x'4141414141414141')",
        "CREATE VIRTUAL TABLE v USING fts3(a, tokenize=x)",
        "CREATE VIRTUAL TABLE v USING fts4(a)",
        "CREATE VIRTUAL TABLE v USING fts5(a)",
        "CREATE VIRTUAL TABLE v USING rtree(id, x0, x1)",
        "SELECT load_extension('/tmp/x')",
        "SELECT sqlite_compileoption_get(0)",
        "SELECT last_insert_rowid()",
        "SELECT * FROM fts3tokenize",
        "SELECT * FROM sqlite_stmt",
    ],
)
def test_functions_and_modules_off_the_allow_list_are_forbidden(
    db: SqliteAppDatabase, sql: str
) -> None:
    assert refused(db, sql).error_type is QueryErrorType.FORBIDDEN


def test_a_default_expression_cannot_call_a_function_off_the_list(db: SqliteAppDatabase) -> None:
    """The authorizer never sees a DEFAULT's functions: the connection has none to call."""
    run(db, "CREATE TABLE d (id INTEGER, a DEFAULT (sqlite_source_id()))")
    assert refused(db, "INSERT INTO d (id) VALUES (1)").error_type is QueryErrorType.FORBIDDEN
    assert run(db, "SELECT * FROM d") == []


def test_what_users_need_still_works(db: SqliteAppDatabase) -> None:
    row = run(
        db,
        "SELECT upper('a') AS u, round(2.5) AS r, date('2024-01-02') AS d, sqrt(16) AS s, "
        "json_extract('{\"a\": 1}', '$.a') AS j, '{\"b\": 2}' ->> 'b' AS b, "
        "printf('%05d', 7) AS p, count(*) OVER () AS w",
    )
    assert row == [{"u": "A", "r": 3.0, "d": "2024-01-02", "s": 4.0, "j": 1, "b": 2,
                    "p": "00007", "w": 1}]  # fmt: skip
    assert run(db, "SELECT value FROM json_each('[1, 2]')") == [{"value": 1}, {"value": 2}]
    assert [r["name"] for r in run(db, "SELECT name FROM pragma_table_info('users')")] == [
        "id", "email",
    ]  # fmt: skip
    run(db, "CREATE TABLE t (id INTEGER PRIMARY KEY AUTOINCREMENT, v TEXT DEFAULT (lower('X')))")
    run(db, "CREATE INDEX t_v ON t (lower(v))")
    run(db, "CREATE VIEW tv AS SELECT v FROM t")
    run(db, "CREATE TRIGGER t_copy AFTER INSERT ON t BEGIN INSERT INTO users (email) "
            "VALUES (NEW.v); END")  # fmt: skip
    run(db, "INSERT INTO t (id) VALUES (1)")
    assert run(db, "SELECT v FROM tv") == [{"v": "x"}]
    run(db, "ALTER TABLE t RENAME TO t2")
    run(db, "ALTER TABLE t2 ADD COLUMN w INTEGER DEFAULT 3")
    run(db, "ALTER TABLE t2 RENAME COLUMN w TO w2")
    run(db, "ALTER TABLE t2 DROP COLUMN w2")
    for statement in ("DROP TRIGGER t_copy", "DROP VIEW tv", "DROP INDEX t_v", "DROP TABLE t2"):
        run(db, statement)
    # The platform's capture trigger fired for the trigger's insert into users.
    assert [event.record["email"] for event in db.fetch_outbox(10)] == ["x"]


def test_a_huge_value_is_refused_before_it_is_made(db: SqliteAppDatabase) -> None:
    error = refused(db, "SELECT randomblob(1000000000)")
    assert error.error_type is QueryErrorType.TOO_LARGE
    assert refused(db, "SELECT $1", "x" * (2 * MB)).error_type is QueryErrorType.TOO_LARGE


def test_many_rows_are_refused_before_all_are_held(db: SqliteAppDatabase) -> None:
    sql = (
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n LIMIT 1000000) "
        "SELECT randomblob(1000) FROM n"
    )
    assert refused(db, sql).error_type is QueryErrorType.TOO_LARGE


def test_sqlite_limits_are_set_on_the_function_connection(db: SqliteAppDatabase) -> None:
    assert refused(db, "SELECT 1 -- " + "x" * MAX_SQL_BYTES).error_type is QueryErrorType.TOO_LARGE
    deep = "SELECT " + "(" * 200 + "1" + ")" * 200
    assert refused(db, deep).error_type is QueryErrorType.QUERY_ERROR
    compound = " UNION ALL ".join(["SELECT 1"] * 100)
    assert refused(db, compound).error_type is QueryErrorType.QUERY_ERROR
    many = "SELECT " + ", ".join(f"${i}" for i in range(1, 1001))
    assert refused(db, many, *range(1000)).error_type is QueryErrorType.QUERY_ERROR


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * FROM sqlite_master",
        "SELECT name, sql FROM sqlite_schema",
        "SELECT * FROM main.sqlite_master",
        "SELECT * FROM sqlite_temp_master",
        "SELECT rowid FROM sqlite_master",
        "SELECT count(*) FROM sqlite_master",
        "SELECT * FROM sqlite_sequence",
        "UPDATE sqlite_sequence SET seq = 9223372036854775807",
        "SELECT * FROM dbstat",
        "SELECT name FROM dbstat('main')",
        "ANALYZE",
        "PRAGMA table_info(_wasmlet_outbox)",
        "SELECT * FROM pragma_index_info('sqlite_autoindex__wasmlet_outbox_1')",
        "CREATE TABLE copy AS SELECT sql FROM sqlite_master",
        "UPDATE users SET email = m.sql FROM sqlite_master AS m",
        "BEGIN",
        "SAVEPOINT s",
    ],
)
def test_the_schema_and_its_statistics_are_out_of_sight(db: SqliteAppDatabase, sql: str) -> None:
    assert refused(db, sql).error_type is QueryErrorType.FORBIDDEN


def test_statistics_made_by_the_operator_stay_out_of_sight(db: SqliteAppDatabase) -> None:
    with sqlite3.connect(db.path) as operator:
        operator.execute("CREATE INDEX users_email ON users (email)")
        operator.execute("INSERT INTO users (email) VALUES ('a'), ('b')")
        operator.execute("ANALYZE")
    assert refused(db, "SELECT * FROM sqlite_stat1").error_type is QueryErrorType.FORBIDDEN
    assert refused(db, "DELETE FROM sqlite_stat1").error_type is QueryErrorType.FORBIDDEN


def test_a_view_or_trigger_cannot_read_the_schema_for_the_function(
    db: SqliteAppDatabase,
) -> None:
    run(db, "CREATE VIEW leak AS SELECT name FROM sqlite_master")
    assert refused(db, "SELECT * FROM leak").error_type is QueryErrorType.FORBIDDEN
    run(db, "CREATE TABLE names (name TEXT)")
    run(db, "CREATE TRIGGER snoop AFTER INSERT ON users BEGIN "
            "INSERT INTO names SELECT name FROM sqlite_master; END")  # fmt: skip
    error = refused(db, "INSERT INTO users (email) VALUES ('a')")
    assert error.error_type is QueryErrorType.FORBIDDEN


@pytest.mark.parametrize("new_name", ["_wasmlet_x", "_WASMLET_outbox2", "_Wasmlet_y"])
def test_a_table_cannot_be_renamed_into_the_platform_namespace(
    db: SqliteAppDatabase, new_name: str
) -> None:
    run(db, "CREATE TABLE t (a)")
    error = refused(db, f'ALTER TABLE t RENAME TO "{new_name}"')
    assert error.error_type is QueryErrorType.FORBIDDEN
    assert run(db, "SELECT count(*) AS n FROM t") == [{"n": 0}]  # rolled back: t is still t
    with sqlite3.connect(db.path) as operator:
        names = [row[0] for row in operator.execute("SELECT name FROM sqlite_master")]
    assert new_name not in names and new_name.lower() not in (n.lower() for n in names)
