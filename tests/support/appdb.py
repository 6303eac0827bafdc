"""A wasmlet server on SQLite or on a throwaway PostgreSQL database, with the SQL each
dialect needs and a connection "as the application" (outside wasmlet)."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from tests.support.postgres import PgDatabase, fresh_database
from tests.support.server import ServerProcess, running_server


@dataclass
class Backend:
    name: str
    server: ServerProcess
    pg: PgDatabase | None

    def app_rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Run SQL as the user's own application does, committed; rows if any."""
        if self.pg is None:
            with sqlite3.connect(self.server.data_dir / "app.db", timeout=30) as conn:
                rows = conn.execute(sql.replace("%s", "?"), params).fetchall()
            return rows
        with psycopg.connect(self.pg.url, autocommit=True) as pg_conn:
            cursor = pg_conn.execute(sql, params)
            return cursor.fetchall() if cursor.description else []

    @property
    def now_sql(self) -> str:
        """SQL for the current wall-clock time in epoch seconds."""
        if self.pg is None:
            return "((julianday('now') - 2440587.5) * 86400.0)"
        return "extract(epoch FROM clock_timestamp())"

    def event_field(self, path: str, cast_int: bool = False) -> str:
        """SQL reading `path` (record.id, id, ...) from the event JSON bound as $1."""
        if self.pg is None:
            return f"json_extract($1, '$.{path}')"
        keys = path.split(".")
        expr = "$1::jsonb" + "".join(f"->'{k}'" for k in keys[:-1]) + f"->>'{keys[-1]}'"
        return f"({expr})::int" if cast_int else expr


@contextmanager
def backend(kind: str, data_dir: Path, **env: str) -> Iterator[Backend]:
    if kind == "sqlite":
        with _server(data_dir, env) as server:
            yield Backend(kind, server, None)
        return
    with fresh_database() as pg, _server(data_dir, {**pg.env(), **env}) as server:
        yield Backend(kind, server, pg)


@contextmanager
def _server(data_dir: Path, env: dict[str, str]) -> Iterator[ServerProcess]:
    yield from running_server(data_dir, **env)


def wait_until(check: Callable[[], bool], timeout_s: float = 60, what: str = "") -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or check}")
        time.sleep(0.05)
