"""PostgreSQL backend: the platform's tables live in their own schema.

The application's tables stay in the schemas the user owns; the platform schema
(default `wasmlet`) holds functions, versions and, later, the queues.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from wasmlet.errors import DbUnavailable
from wasmlet.store.base import Row, Store
from wasmlet.store.queries import Migration

CONNECT_TIMEOUT_S = 2
SETUP_LOCK = 0x7761736D6C6574  # "wasmlet": one advisory lock for schema and role set-up
_PARAM = re.compile(r"(?<![:\w]):([a-z_][a-z0-9_]*)")


def to_psycopg(query: str) -> str:
    return _PARAM.sub(r"%(\1)s", query.replace("%", "%%"))


class PostgresStore(Store):
    dialect = "postgres"

    def __init__(self, url: str, *, schema: str = "wasmlet") -> None:
        super().__init__()
        self.schema = schema
        self._url = url
        self._translated = {name: to_psycopg(text) for name, text in self._queries.items()}
        self._lock = threading.RLock()
        self._conn = self._connect()
        with setup_lock(self._conn):
            self._conn.execute(
                sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema))
            )

    def _connect(self) -> psycopg.Connection[Row]:
        try:
            conn = psycopg.connect(
                self._url, autocommit=True, row_factory=dict_row, connect_timeout=CONNECT_TIMEOUT_S
            )
        except psycopg.OperationalError as exc:
            raise DbUnavailable(f"Database unavailable: {_first_line(exc)}") from exc
        conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(self.schema)))
        return conn

    @property
    def _live(self) -> psycopg.Connection[Row]:
        if self._conn.closed or self._conn.broken:
            self._conn = self._connect()
        return self._conn

    @contextmanager
    def _unavailable_as_error(self) -> Iterator[None]:
        try:
            yield
        except psycopg.OperationalError as exc:
            if self._conn.broken or self._conn.closed:
                raise DbUnavailable(f"Database unavailable: {_first_line(exc)}") from exc
            raise

    def sql(self, name: str) -> str:
        return self._translated[name]

    @contextmanager
    def transaction(self) -> Iterator[None]:
        with self._lock, self._unavailable_as_error(), self._live.transaction():
            yield

    def execute(self, query: str, /, **params: Any) -> int:
        with self._lock, self._unavailable_as_error():
            return self._live.execute(self.sql(query), params).rowcount

    def execute_many(self, query: str, rows: Sequence[Mapping[str, Any]], /) -> None:
        with self._lock, self._unavailable_as_error(), self._live.transaction():
            self._live.cursor().executemany(self.sql(query), rows)

    def execute_each(self, statements: Sequence[tuple[str, Mapping[str, Any]]], /) -> list[int]:
        """Pipelined: BEGIN, every statement and COMMIT go out together, one round trip."""
        if not statements:
            return []
        with self._lock, self._unavailable_as_error():
            conn = self._live
            with conn.pipeline(), conn.transaction():
                cursors = [conn.execute(self.sql(query), params) for query, params in statements]
            return [cursor.rowcount for cursor in cursors]

    def fetch_one(self, query: str, /, **params: Any) -> Row | None:
        with self._lock, self._unavailable_as_error():
            return self._live.execute(self.sql(query), params).fetchone()

    def fetch_all(self, query: str, /, **params: Any) -> list[Row]:
        with self._lock, self._unavailable_as_error():
            return self._live.execute(self.sql(query), params).fetchall()

    def migrate(self) -> list[int]:
        """Under the set-up lock: nodes started together apply each migration once."""
        with self._lock, self._unavailable_as_error(), setup_lock(self._live):
            return super().migrate()

    def applied_migrations(self) -> set[int]:
        with self._lock:
            self._live.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, "
                "name TEXT NOT NULL, applied_at DOUBLE PRECISION NOT NULL)"
            )
            rows = self._live.execute("SELECT version FROM schema_migrations").fetchall()
        return {row["version"] for row in rows}

    def _apply(self, migration: Migration) -> None:
        with self._lock, self._conn.transaction():
            self._conn.execute(migration.sql.encode())
            self._conn.execute(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES (%s, %s, %s)",
                (migration.version, migration.name, time.time()),
            )

    def close(self) -> None:
        with self._lock:
            self._conn.close()


@contextmanager
def setup_lock(conn: psycopg.Connection[Any]) -> Iterator[None]:
    """Hold the database's set-up advisory lock: schema, migrations and roles are created
    by one node at a time (`CREATE ... IF NOT EXISTS` races on the catalogs)."""
    conn.execute("SELECT pg_advisory_lock(%s)", [SETUP_LOCK])
    try:
        yield
    finally:
        if not (conn.closed or conn.broken):  # a lost session has released it already
            conn.execute("SELECT pg_advisory_unlock(%s)", [SETUP_LOCK])


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
