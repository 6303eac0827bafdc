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
from psycopg_pool import ConnectionPool, PoolTimeout

from wasmlet.errors import DbUnavailable
from wasmlet.store.base import Row, Store
from wasmlet.store.queries import Migration

CONNECT_TIMEOUT_S = 2
POOL_SIZE = 6
ACQUIRE_TIMEOUT_S = 5.0
SETUP_LOCK = 0x7761736D6C6574  # "wasmlet": one advisory lock for schema and role set-up
_PARAM = re.compile(r"(?<![:\w]):([a-z_][a-z0-9_]*)")


def to_psycopg(query: str) -> str:
    return _PARAM.sub(r"%(\1)s", query.replace("%", "%%"))


class PostgresStore(Store):
    """Named queries over a bounded pool of connections (`psycopg_pool`).

    A call takes a connection for itself and gives it back; a `transaction()` takes
    one for its whole duration, and every call the same thread makes inside it runs on
    it. The pool checks a connection before handing it out and discards a broken one
    (a restarted server, a killed backend): nothing reconnects inline under a lock,
    and a slow query holds up only its own connection. No connection within
    `acquire_timeout_s` (the database is away, or every connection is busy) is
    `DbUnavailable`.
    """

    dialect = "postgres"

    def __init__(
        self,
        url: str,
        *,
        schema: str = "wasmlet",
        pool_size: int = POOL_SIZE,
        acquire_timeout_s: float = ACQUIRE_TIMEOUT_S,
    ) -> None:
        super().__init__()
        self.schema = schema
        self._translated = {name: to_psycopg(text) for name, text in self._queries.items()}
        self._acquire_timeout_s = acquire_timeout_s
        self._local = threading.local()  # this thread's transaction connection, if any
        self._pool: ConnectionPool[psycopg.Connection[Row]] = ConnectionPool(
            url,
            min_size=1,
            max_size=max(1, pool_size),
            kwargs={
                "autocommit": True,
                "row_factory": dict_row,
                "connect_timeout": CONNECT_TIMEOUT_S,
            },
            configure=self._configure,
            check=ConnectionPool.check_connection,
            timeout=acquire_timeout_s,
            name=f"wasmlet-store-{schema}",
            open=False,
        )
        try:
            self._pool.open(wait=True, timeout=CONNECT_TIMEOUT_S + 1)
        except PoolTimeout as exc:
            self._pool.close()
            raise DbUnavailable(f"Database unavailable: {_first_line(exc)}") from exc
        try:
            with self._connection() as conn, setup_lock(conn):
                conn.execute(
                    sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema))
                )
        except BaseException:
            self._pool.close()
            raise

    def _configure(self, conn: psycopg.Connection[Row]) -> None:
        conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(self.schema)))

    @property
    def pool_stats(self) -> dict[str, int]:
        """The pool's counters (`psycopg_pool` names): size, available, waiting, ..."""
        return self._pool.get_stats()

    @contextmanager
    def _connection(self) -> Iterator[psycopg.Connection[Row]]:
        """This thread's transaction connection, or one from the pool for this call;
        a lost connection or none to be had is `DbUnavailable`."""
        held: psycopg.Connection[Row] | None = getattr(self._local, "conn", None)
        if held is not None:
            with _unavailable_as_error(held):
                yield held
            return
        try:
            conn = self._pool.getconn(timeout=self._acquire_timeout_s)
        except PoolTimeout as exc:
            raise DbUnavailable(f"Database unavailable: {_first_line(exc)}") from exc
        try:
            with _unavailable_as_error(conn):
                yield conn
        finally:
            self._pool.putconn(conn)  # a broken one is discarded and replaced by the pool

    @contextmanager
    def _pinned(self) -> Iterator[psycopg.Connection[Row]]:
        """Run every call this thread makes inside on one connection."""
        held: psycopg.Connection[Row] | None = getattr(self._local, "conn", None)
        if held is not None:
            yield held
            return
        with self._connection() as conn:
            self._local.conn = conn
            try:
                yield conn
            finally:
                self._local.conn = None

    def sql(self, name: str) -> str:
        return self._translated[name]

    @contextmanager
    def transaction(self) -> Iterator[None]:
        self._note_if_on_loop("transaction")
        with self._pinned() as conn, _unavailable_as_error(conn), conn.transaction():
            yield

    def execute(self, query: str, /, **params: Any) -> int:
        self._note_if_on_loop(query)
        with self._connection() as conn:
            return conn.execute(self.sql(query), params).rowcount

    def execute_many(self, query: str, rows: Sequence[Mapping[str, Any]], /) -> None:
        self._note_if_on_loop(query)
        with self._pinned() as conn, _unavailable_as_error(conn), conn.transaction():
            conn.cursor().executemany(self.sql(query), rows)

    def execute_each(self, statements: Sequence[tuple[str, Mapping[str, Any]]], /) -> list[int]:
        """Pipelined: BEGIN, every statement and COMMIT go out together, one round trip."""
        if not statements:
            return []
        self._note_if_on_loop(statements[0][0])
        with self._pinned() as conn, _unavailable_as_error(conn):
            with conn.pipeline(), conn.transaction():
                cursors = [conn.execute(self.sql(query), params) for query, params in statements]
            return [cursor.rowcount for cursor in cursors]

    def fetch_one(self, query: str, /, **params: Any) -> Row | None:
        self._note_if_on_loop(query)
        with self._connection() as conn:
            return conn.execute(self.sql(query), params).fetchone()

    def fetch_all(self, query: str, /, **params: Any) -> list[Row]:
        self._note_if_on_loop(query)
        with self._connection() as conn:
            return conn.execute(self.sql(query), params).fetchall()

    def migrate(self) -> list[int]:
        """Under the set-up lock: nodes started together apply each migration once."""
        self._note_if_on_loop("migrate")
        with self._pinned() as conn, _unavailable_as_error(conn), setup_lock(conn):
            return super().migrate()

    def applied_migrations(self) -> set[int]:
        with self._connection() as conn:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, "
                "name TEXT NOT NULL, applied_at DOUBLE PRECISION NOT NULL)"
            )
            rows = conn.execute("SELECT version FROM schema_migrations").fetchall()
        return {row["version"] for row in rows}

    def _apply(self, migration: Migration) -> None:
        with self._pinned() as conn, conn.transaction():
            conn.execute(migration.sql.encode())
            conn.execute(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES (%s, %s, %s)",
                (migration.version, migration.name, time.time()),
            )

    def close(self) -> None:
        self._pool.close()


@contextmanager
def _unavailable_as_error(conn: psycopg.Connection[Any]) -> Iterator[None]:
    """A connection lost under a call is `DbUnavailable`; other errors are the query's."""
    try:
        yield
    except psycopg.OperationalError as exc:
        if conn.broken or conn.closed:
            raise DbUnavailable(f"Database unavailable: {_first_line(exc)}") from exc
        raise


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
