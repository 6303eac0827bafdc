"""The application database on SQLite: its own file, beside the platform's.

Capture triggers must write in the same transaction as the change, so the outbox
table lives in the application file too (`_wasmlet_outbox`). Functions reach the file
through hardened connections (`sqlite_guard`): SQLite limits, allow-listed functions and
table-valued functions, and an authorizer that refuses every direct access to `_wasmlet_*`
objects and SQLite's schema tables, ATTACH (which could open the platform file) and all
but a few read-only pragmas; only the platform's own triggers may write the outbox.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from wasmlet.appdb.base import (
    TRIGGER_PREFIX,
    AppDatabase,
    OutboxEvent,
    QueryError,
    QueryErrorType,
    TableRef,
    check_sql_size,
    collect_rows,
    encode_rows,
    function_trigger_prefix,
    row_count,
    trigger_name,
)
from wasmlet.appdb.sqlite_guard import GuestAuthorizer, harden, is_platform_name
from wasmlet.store.queries import load_migrations

_EVENT_SUFFIX = {"INSERT": "ins", "UPDATE": "upd", "DELETE": "del"}
PROGRESS_STEPS = 1000
TIMEOUT_MESSAGE = "query ran past the function's time"
RESERVED_MESSAGE = f"names starting with {TRIGGER_PREFIX} are reserved for the platform"


class SqliteAppDatabase(AppDatabase):
    dialect = "sqlite"
    default_schema = "main"

    def __init__(self, path: Path, *, busy_timeout_s: float = 5.0) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._busy_timeout_s = busy_timeout_s
        self._local = threading.local()
        self._guest_conns: list[sqlite3.Connection] = []
        self._admin = self._connect()
        self._admin_lock = threading.Lock()
        # Only the dispatcher's change watcher reads this one; it never waits on a lock
        # that a relay blocked on SQLite's write lock could hold.
        self._watch = self._connect()
        self._migrate()
        self._platform_tables = self._tables_named_like_ours(self._admin)

    def _connect(self, cached_statements: int = 128) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self.path,
            isolation_level=None,
            check_same_thread=False,
            timeout=self._busy_timeout_s,
            cached_statements=cached_statements,
        )
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        return conn

    def _guest_connection(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            # No statement cache: every guest statement is prepared, so authorized, anew.
            conn = self._connect(cached_statements=0)
            self._local.authorizer = harden(conn)
            self._local.conn = conn
            with self._admin_lock:
                self._guest_conns.append(conn)
        return conn

    @staticmethod
    def _tables_named_like_ours(conn: sqlite3.Connection) -> frozenset[str]:
        rows = conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE ? ESCAPE '\\' "
            "UNION ALL SELECT name FROM sqlite_temp_master WHERE name LIKE ? ESCAPE '\\'",
            (_PREFIX_LIKE, _PREFIX_LIKE),
        )
        return frozenset(row[0].lower() for row in rows)

    def _as_platform(self, conn: sqlite3.Connection, sql: str) -> Any:
        authorizer: GuestAuthorizer = self._local.authorizer
        authorizer.platform = True
        try:
            return conn.execute(sql).fetchall()
        finally:
            authorizer.platform = False

    def _check_namespace(self, conn: sqlite3.Connection) -> None:
        """ALTER TABLE ... RENAME TO is the one way in that the authorizer cannot see."""
        authorizer: GuestAuthorizer = self._local.authorizer
        authorizer.platform = True
        try:
            tables = self._tables_named_like_ours(conn)
        finally:
            authorizer.platform = False
        if tables - self._platform_tables:
            raise QueryError(QueryErrorType.FORBIDDEN, RESERVED_MESSAGE)

    def _migrate(self) -> None:
        with self._admin_lock:
            conn = self._admin
            conn.execute(
                "CREATE TABLE IF NOT EXISTS _wasmlet_migrations "
                "(version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at REAL NOT NULL)"
            )
            done = {row[0] for row in conn.execute("SELECT version FROM _wasmlet_migrations")}
            for migration in load_migrations("app_sqlite"):
                if migration.version in done:
                    continue
                conn.execute("BEGIN IMMEDIATE")
                try:
                    conn.execute(migration.sql)
                    conn.execute(
                        "INSERT INTO _wasmlet_migrations VALUES (?, ?, ?)",
                        (migration.version, migration.name, time.time()),
                    )
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                conn.execute("COMMIT")

    def query(self, sql: str, params: list[Any], deadline: float, max_bytes: int) -> bytes:
        check_sql_size(sql)
        conn = self._guest_connection()
        authorizer: GuestAuthorizer = self._local.authorizer
        conn.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, max_bytes)
        conn.set_progress_handler(lambda: time.monotonic() > deadline, PROGRESS_STEPS)
        try:
            schema_version = None
            if _may_write(sql):
                # Take the write lock first: a deferred read that later upgrades to a
                # write fails at once with SQLITE_BUSY when another writer got in between,
                # where an immediate one waits for the lock (the busy timeout).
                self._as_platform(conn, "BEGIN IMMEDIATE")
                schema_version = self._as_platform(conn, "PRAGMA schema_version")
            authorizer.begin()
            cursor = conn.execute(sql, {str(i + 1): value for i, value in enumerate(params)})
            columns = [d[0] for d in cursor.description] if cursor.description else []
            rows = collect_rows(cursor, max_bytes) if columns else []
            count = row_count(cursor.rowcount, rows)
            if conn.in_transaction:
                if self._as_platform(conn, "PRAGMA schema_version") != schema_version:
                    self._check_namespace(conn)
                self._as_platform(conn, "COMMIT")
            return encode_rows(columns, rows, count, max_bytes)
        except sqlite3.DatabaseError as exc:
            if time.monotonic() > deadline:
                raise QueryError(
                    QueryErrorType.TIMEOUT, "query ran past the function's time"
                ) from exc
            code = getattr(exc, "sqlite_errorcode", None)
            if code == sqlite3.SQLITE_AUTH or authorizer.refused:
                raise QueryError(QueryErrorType.FORBIDDEN, str(exc)) from exc
            if code == sqlite3.SQLITE_TOOBIG:
                raise QueryError(QueryErrorType.TOO_LARGE, str(exc)) from exc
            raise QueryError(QueryErrorType.QUERY_ERROR, str(exc)) from exc
        except (sqlite3.Warning, sqlite3.ProgrammingError, OverflowError, TypeError) as exc:
            raise QueryError(QueryErrorType.QUERY_ERROR, str(exc)) from exc
        finally:
            conn.set_progress_handler(None, 0)
            if conn.in_transaction:
                self._as_platform(conn, "ROLLBACK")

    def table_exists(self, ref: TableRef) -> bool:
        with self._admin_lock:
            row = self._admin.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (ref.table,)
            ).fetchone()
        return row is not None and not is_platform_name(ref.table)

    def install_trigger(self, function: str, ref: TableRef, events: list[str]) -> None:
        with self._admin_lock, self._admin_transaction():
            self._create_triggers(function, ref, events)

    def replace_triggers(self, function: str, wanted: list[tuple[TableRef, list[str]]]) -> None:
        prefix = function_trigger_prefix(function)
        names = [name for name in self.trigger_names() if name.startswith(prefix)]
        with self._admin_lock, self._admin_transaction():  # DDL is transactional in SQLite
            for name in names:
                self._admin.execute(f"DROP TRIGGER IF EXISTS {_quote(name)}")
            for ref, events in wanted:
                self._create_triggers(function, ref, events)

    @contextlib.contextmanager
    def _admin_transaction(self) -> Iterator[None]:
        self._admin.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._admin.execute("ROLLBACK")
            raise
        self._admin.execute("COMMIT")

    def _create_triggers(self, function: str, ref: TableRef, events: list[str]) -> None:
        info = self._admin.execute(f"PRAGMA table_info({_quote(ref.table)})").fetchall()
        columns = [row[1] for row in info]
        key = [row[1] for row in sorted((r for r in info if r[5] > 0), key=lambda r: r[5])]
        base = trigger_name(function, ref)
        for event in events:
            self._admin.execute(_trigger_sql(base, function, ref, event, columns, key))

    def drop_triggers(self, function: str) -> int:
        prefix = function_trigger_prefix(function)
        names = [name for name in self.trigger_names() if name.startswith(prefix)]
        with self._admin_lock:
            for name in names:
                self._admin.execute(f"DROP TRIGGER IF EXISTS {_quote(name)}")
        return len(names)

    def trigger_names(self) -> list[str]:
        with self._admin_lock:
            rows = self._admin.execute(
                "SELECT name FROM sqlite_master WHERE type = 'trigger' AND name LIKE ? ESCAPE '\\'",
                (TRIGGER_PREFIX.replace("_", "\\_") + "%",),
            ).fetchall()
        return sorted(row[0] for row in rows)

    def data_version(self) -> int:
        """Changes when another connection commits to the file: a cheap wake-up check."""
        return int(self._watch.execute("PRAGMA data_version").fetchone()[0])

    def fetch_outbox(self, limit: int) -> list[OutboxEvent]:
        with self._admin_lock:
            rows = self._admin.execute(
                "SELECT seq, event_id, function_name, op, schema_name, table_name, record, "
                "old_record, created_at, row_key FROM _wasmlet_outbox ORDER BY seq LIMIT ?",
                (limit,),
            ).fetchall()
        return [_outbox_event(row) for row in rows]

    def delete_outbox(self, seqs: list[int]) -> None:
        if not seqs:
            return
        with self._admin_lock:
            marks = ",".join("?" * len(seqs))
            self._admin.execute(f"DELETE FROM _wasmlet_outbox WHERE seq IN ({marks})", seqs)

    def close(self) -> None:
        with self._admin_lock:
            self._admin.close()
            self._watch.close()
            for conn in self._guest_conns:
                conn.close()


def _outbox_event(row: tuple[Any, ...]) -> OutboxEvent:
    record, old_record = (json.loads(v) if v is not None else None for v in (row[6], row[7]))
    return OutboxEvent(
        row[0], row[1], row[2], row[3], row[4], row[5], record, old_record, row[8], row[9]
    )


_READ_ONLY_START = ("select", "pragma", "explain", "values")
_PREFIX_LIKE = TRIGGER_PREFIX.replace("_", "\\_") + "%"


def _may_write(sql: str) -> bool:
    words = sql.lstrip().split(None, 1)
    return not words or words[0].lower() not in _READ_ONLY_START


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _row_json(alias: str, columns: list[str]) -> str:
    if not columns:
        return "json_object()"
    parts = []
    for column in columns:
        value = f"{alias}.{_quote(column)}"
        safe = f"CASE WHEN typeof({value}) = 'blob' THEN hex({value}) ELSE {value} END"
        parts.append(f"{_literal(column)}, {safe}")
    return "json_object(" + ", ".join(parts) + ")"


def _row_key(alias: str, ref: TableRef, key: list[str]) -> str:
    """The changed row's name: its table and primary key (the rowid without one)."""
    values = ", ".join(f"{alias}.{_quote(c)}" for c in key) if key else f"{alias}.rowid"
    return f"{_literal(f'{ref.schema}.{ref.table} ')} || json_array({values})"


def _trigger_sql(
    base: str, function: str, ref: TableRef, event: str, columns: list[str], key: list[str]
) -> str:
    new = _row_json("NEW", columns) if event != "DELETE" else "NULL"
    old = _row_json("OLD", columns) if event != "INSERT" else "NULL"
    row_key = _row_key("OLD" if event == "DELETE" else "NEW", ref, key)
    return (
        f"CREATE TRIGGER {_quote(base + '_' + _EVENT_SUFFIX[event])} "
        f"AFTER {event} ON {_quote(ref.table)} FOR EACH ROW BEGIN "
        "INSERT INTO _wasmlet_outbox (event_id, function_name, op, schema_name, table_name, "
        "record, old_record, created_at, row_key) VALUES (lower(hex(randomblob(16))), "
        f"{_literal(function)}, {_literal(event)}, {_literal(ref.schema)}, "
        f"{_literal(ref.table)}, {new}, {old}, "
        f"(julianday('now') - 2440587.5) * 86400.0, {row_key}); END"
    )
