"""Issue 10, item 1, through a real server on SQLite: a function's SQL can neither crash the
server, nor make it allocate past the result cap, nor see or enter the platform's schema."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.appdb import Backend, backend
from tests.support.build import build_c

MB = 1024 * 1024


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Backend]:
    # Every refusal is a failed invocation: keep the function's breaker out of the way.
    env = {"WASMLET_BREAKER_MIN_CALLS": "1000"}
    with backend("sqlite", tmp_path_factory.mktemp("sql-hardening"), **env) as b:
        assert b.server.deploy("sql", build_c("db_exec")).status_code == 201
        b.app_rows("CREATE TABLE IF NOT EXISTS users (id INTEGER PRIMARY KEY, email TEXT)")
        deployed = b.server.deploy(
            "on-user", build_c("hello"), None, [{"type": "database", "table": "users"}]
        )
        assert deployed.status_code == 201, deployed.text
        yield b


def sql(db: Backend, statement: str) -> httpx.Response:
    return db.server.invoke("sql", statement.encode())


def server_pid(db: Backend) -> int:
    assert db.server.process is not None
    assert db.server.process.poll() is None, "the server died:\n" + "\n".join(db.server.lines[-30:])
    return db.server.process.pid


def memory_kb(pid: int, field: str) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    match = re.search(rf"^{field}:\s+(\d+) kB$", status, re.MULTILINE)
    assert match, status
    return int(match.group(1))


def assert_refused(response: httpx.Response) -> None:
    assert response.status_code == 500, response.text
    assert response.json()["error"]["type"] == "host_function_error"
    assert "_wasmlet" not in response.text.lower()


def test_the_fts3_tokenizer_cannot_crash_the_server(db: Backend) -> None:
    pid = server_pid(db)
    assert_refused(sql(db, "SELECT hex(fts3_tokenizer('simple'))"))
    # Registering a tokenizer is per connection and queries run on a few threads, each
    # with its own: register often enough that every thread has it, then use it.
    for _ in range(8):
        assert_refused(sql(db, "SELECT fts3_tokenizer('x', x'4141414141414141')"))
    for _ in range(4):
        assert_refused(sql(db, "CREATE VIRTUAL TABLE v USING fts3(a, tokenize=x)"))
    assert server_pid(db) == pid
    answered = sql(db, "SELECT 1 AS one")
    assert answered.status_code == 200, answered.text
    assert answered.json() == {"rows": [{"one": 1}], "row_count": 1}
    assert server_pid(db) == pid


def test_a_gigabyte_blob_is_refused_before_the_server_allocates_it(db: Backend) -> None:
    pid = server_pid(db)
    before = memory_kb(pid, "VmHWM")
    response = sql(db, "SELECT randomblob(1000000000)")
    assert response.status_code == 500, response.text
    assert "too big" in response.json()["error"]["message"]
    grown_mb = (memory_kb(pid, "VmHWM") - before) / 1024
    assert grown_mb < 200, f"the server's peak RSS grew by {grown_mb:.0f} MB"
    assert server_pid(db) == pid
    assert sql(db, "SELECT 1 AS one").status_code == 200


def test_a_table_cannot_be_renamed_into_the_platform_namespace(db: Backend) -> None:
    assert sql(db, "CREATE TABLE renamed (a)").status_code == 200
    response = sql(db, "ALTER TABLE renamed RENAME TO _wasmlet_x")
    assert response.status_code == 500, response.text
    assert response.json()["error"]["type"] == "host_function_error"
    assert "reserved" in response.json()["error"]["message"]
    tables = {row[0] for row in db.app_rows("SELECT name FROM sqlite_master")}
    assert "renamed" in tables and "_wasmlet_x" not in tables


@pytest.mark.parametrize(
    "statement",
    [
        "SELECT type, name, tbl_name, sql FROM sqlite_master",
        "SELECT name, sql FROM sqlite_schema WHERE name LIKE '%wasmlet%'",
        "SELECT name FROM dbstat",
        "ANALYZE",
        "SELECT tbl, idx, stat FROM sqlite_stat1",
        "SELECT name, seq FROM sqlite_sequence",
    ],
)
def test_nothing_of_the_platform_schema_is_visible(db: Backend, statement: str) -> None:
    db.app_rows("ANALYZE")  # the operator's statistics, which name the platform's tables
    assert any("_wasmlet" in str(row[0]) for row in db.app_rows("SELECT tbl FROM sqlite_stat1"))
    assert_refused(sql(db, statement))
    assert sql(db, "SELECT count(*) AS n FROM users").status_code == 200
