"""The application database on SQLite: its own file, beside the platform's.

Capture triggers must write in the same transaction as the change, so the outbox
table lives in the application file too (`_wasmlet_outbox`). Functions reach the file
through connections with an authorizer that refuses every direct access to
`_wasmlet_*` objects, ATTACH (which could open the platform file) and all but a few
read-only pragmas; only the platform's own triggers may write the outbox.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from wasmlet.appdb.base import (
    TRIGGER_PREFIX,
    AppDatabase,
    OutboxEvent,
    QueryError,
    QueryErrorType,
    TableRef,
    encode_rows,
    function_trigger_prefix,
    trigger_name,
)
from wasmlet.store.queries import load_migrations

SAFE_PRAGMAS = frozenset(
    {"table_info", "table_xinfo", "index_list", "index_info", "index_xinfo", "foreign_key_list"}
)
_NAMED_ACTIONS = frozenset(
    {
        sqlite3.SQLITE_READ, sqlite3.SQLITE_INSERT, sqlite3.SQLITE_UPDATE, sqlite3.SQLITE_DELETE,
        sqlite3.SQLITE_CREATE_TABLE, sqlite3.SQLITE_DROP_TABLE, sqlite3.SQLITE_ALTER_TABLE,
        sqlite3.SQLITE_CREATE_INDEX, sqlite3.SQLITE_DROP_INDEX, sqlite3.SQLITE_CREATE_TRIGGER,
        sqlite3.SQLITE_DROP_TRIGGER, sqlite3.SQLITE_CREATE_VIEW, sqlite3.SQLITE_DROP_VIEW,
        sqlite3.SQLITE_CREATE_TEMP_TABLE, sqlite3.SQLITE_CREATE_TEMP_TRIGGER,
        sqlite3.SQLITE_CREATE_TEMP_INDEX, sqlite3.SQLITE_CREATE_TEMP_VIEW,
    }
)  # fmt: skip
_EVENT_SUFFIX = {"INSERT": "ins", "UPDATE": "upd", "DELETE": "del"}
PROGRESS_STEPS = 1000
TIMEOUT_MESSAGE = "query ran past the function's time"


def _is_platform_name(name: str | None) -> bool:
    return name is not None and name.lower().startswith(TRIGGER_PREFIX)


class GuestAuthorizer:
    """Denies what a function must not do; `trigger` is the innermost trigger, if any.

    Dropping a table drops its triggers, ours included: that is allowed within the
    statement that drops the table, never as a `DROP TRIGGER` of its own.
    """

    def __init__(self) -> None:
        self.dropping: set[str] = set()

    def __call__(
        self, action: int, arg1: str | None, arg2: str | None, _db: str | None, trigger: str | None
    ) -> int:
        if action in (sqlite3.SQLITE_ATTACH, sqlite3.SQLITE_DETACH):
            return sqlite3.SQLITE_DENY
        if action == sqlite3.SQLITE_PRAGMA:
            allowed = arg1 is not None and arg1.lower() in SAFE_PRAGMAS
            return sqlite3.SQLITE_OK if allowed else sqlite3.SQLITE_DENY
        if action == sqlite3.SQLITE_DROP_TABLE and arg1 is not None:
            self.dropping.add(arg1.lower())
        if action not in _NAMED_ACTIONS or not (_is_platform_name(arg1) or _is_platform_name(arg2)):
            return sqlite3.SQLITE_OK
        if action in (sqlite3.SQLITE_INSERT, sqlite3.SQLITE_READ) and _is_platform_name(trigger):
            return sqlite3.SQLITE_OK  # the platform's own capture trigger at work
        if action == sqlite3.SQLITE_DROP_TRIGGER and (arg2 or "").lower() in self.dropping:
            return sqlite3.SQLITE_OK
        return sqlite3.SQLITE_DENY


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

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self.path, isolation_level=None, check_same_thread=False, timeout=self._busy_timeout_s
        )
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        return conn

    def _guest_connection(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
            self._local.authorizer = GuestAuthorizer()
            conn.set_authorizer(self._local.authorizer)
            self._local.conn = conn
            with self._admin_lock:
                self._guest_conns.append(conn)
        self._local.authorizer.dropping.clear()
        return conn

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
        conn = self._guest_connection()
        conn.set_progress_handler(lambda: time.monotonic() > deadline, PROGRESS_STEPS)
        try:
            if _may_write(sql):
                # Take the write lock first: a deferred read that later upgrades to a
                # write fails at once with SQLITE_BUSY when another writer got in between,
                # where an immediate one waits for the lock (the busy timeout).
                conn.execute("BEGIN IMMEDIATE")
            cursor = conn.execute(sql, {str(i + 1): value for i, value in enumerate(params)})
            columns = [d[0] for d in cursor.description] if cursor.description else []
            rows = cursor.fetchall() if columns else []
            if conn.in_transaction:
                conn.execute("COMMIT")
            return encode_rows(columns, rows, max_bytes)
        except sqlite3.DatabaseError as exc:
            if time.monotonic() > deadline:
                raise QueryError(
                    QueryErrorType.TIMEOUT, "query ran past the function's time"
                ) from exc
            if getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_AUTH:
                raise QueryError(QueryErrorType.FORBIDDEN, str(exc)) from exc
            raise QueryError(QueryErrorType.QUERY_ERROR, str(exc)) from exc
        except (sqlite3.Warning, sqlite3.ProgrammingError, OverflowError, TypeError) as exc:
            raise QueryError(QueryErrorType.QUERY_ERROR, str(exc)) from exc
        finally:
            conn.set_progress_handler(None, 0)
            if conn.in_transaction:
                conn.execute("ROLLBACK")

    def table_exists(self, ref: TableRef) -> bool:
        with self._admin_lock:
            row = self._admin.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (ref.table,)
            ).fetchone()
        return row is not None and not _is_platform_name(ref.table)

    def install_trigger(self, function: str, ref: TableRef, events: list[str]) -> None:
        with self._admin_lock:
            columns = [
                row[1] for row in self._admin.execute(f"PRAGMA table_info({_quote(ref.table)})")
            ]
            base = trigger_name(function, ref)
            self._admin.execute("BEGIN IMMEDIATE")
            try:
                for event in events:
                    self._admin.execute(_trigger_sql(base, function, ref, event, columns))
            except BaseException:
                self._admin.execute("ROLLBACK")
                raise
            self._admin.execute("COMMIT")

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
                "old_record, created_at FROM _wasmlet_outbox ORDER BY seq LIMIT ?",
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
    return OutboxEvent(row[0], row[1], row[2], row[3], row[4], row[5], record, old_record, row[8])


_READ_ONLY_START = ("select", "pragma", "explain", "values")


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


def _trigger_sql(base: str, function: str, ref: TableRef, event: str, columns: list[str]) -> str:
    new = _row_json("NEW", columns) if event != "DELETE" else "NULL"
    old = _row_json("OLD", columns) if event != "INSERT" else "NULL"
    return (
        f"CREATE TRIGGER {_quote(base + '_' + _EVENT_SUFFIX[event])} "
        f"AFTER {event} ON {_quote(ref.table)} FOR EACH ROW BEGIN "
        "INSERT INTO _wasmlet_outbox (event_id, function_name, op, schema_name, table_name, "
        "record, old_record, created_at) VALUES (lower(hex(randomblob(16))), "
        f"{_literal(function)}, {_literal(event)}, {_literal(ref.schema)}, "
        f"{_literal(ref.table)}, {new}, {old}, "
        "(julianday('now') - 2440587.5) * 86400.0); END"
    )
