"""SQLite backend: one file, WAL mode; one writer connection, a reader per thread.

SQLite allows one writer at a time whatever the connections, so every statement that
may write, and every transaction, runs on one connection behind one lock (a writer
never waits on the file lock of another connection of this process, and `BEGIN
IMMEDIATE` cannot deadlock with it). A plain read (a `SELECT` with no write in it)
outside a transaction runs on the calling thread's own read-only connection: in WAL
mode it sees the last commit and is not held up by the writer, nor holds it up.
"""

from __future__ import annotations

import re
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from wasmlet.store.base import Row, Store
from wasmlet.store.queries import Migration

_MIGRATIONS_TABLE = (
    "CREATE TABLE IF NOT EXISTS schema_migrations "
    "(version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at REAL NOT NULL)"
)


_WRITES = re.compile(r"\b(INSERT|UPDATE|DELETE|REPLACE|RETURNING|CREATE|DROP|ALTER)\b", re.I)


def is_plain_read(query: str) -> bool:
    """A statement that only reads: it may run on a read-only connection."""
    head = query.lstrip().upper()
    return head.startswith(("SELECT", "WITH")) and _WRITES.search(query) is None


class SqliteStore(Store):
    dialect = "sqlite"

    def __init__(self, path: Path) -> None:
        super().__init__()
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._conn = sqlite3.connect(
            path, isolation_level=None, check_same_thread=False, timeout=30
        )
        self._conn.row_factory = sqlite3.Row
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA foreign_keys=ON")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._lock = threading.RLock()
        self._depth = 0
        self._owner: int | None = None  # the thread whose transaction is open
        self._reads = {name for name, text in self._queries.items() if is_plain_read(text)}
        self._local = threading.local()  # this thread's reader connection
        self._readers: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()
        self._closed = False

    def _reader(self, query: str) -> sqlite3.Connection | None:
        """This thread's read-only connection for `query`, or None: the writer's (a write,
        or a read inside this thread's transaction, which must see its own writes)."""
        if query not in self._reads or self._in_transaction():
            return None
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(
                f"{self.path.resolve().as_uri()}?mode=ro",
                uri=True,
                isolation_level=None,
                check_same_thread=False,  # closed by `close()`, from another thread
                timeout=30,
            )
            conn.row_factory = sqlite3.Row
            with self._readers_lock:
                if self._closed:
                    conn.close()
                    raise sqlite3.ProgrammingError("Cannot operate on a closed database.")
                self._readers.append(conn)
            self._local.conn = conn
        return conn

    def _in_transaction(self) -> bool:
        return self._owner == threading.get_ident()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        self._note_if_on_loop("transaction")
        with self._lock:
            if self._depth == 0:
                self._conn.execute("BEGIN IMMEDIATE")
                self._owner = threading.get_ident()
            self._depth += 1
            try:
                yield
            except BaseException:
                self._depth -= 1
                if self._depth == 0:
                    self._owner = None
                    self._conn.execute("ROLLBACK")
                raise
            self._depth -= 1
            if self._depth == 0:
                self._owner = None
                self._conn.execute("COMMIT")

    def execute(self, query: str, /, **params: Any) -> int:
        self._note_if_on_loop(query)
        with self._lock:
            return self._conn.execute(self.sql(query), params).rowcount

    def execute_many(self, query: str, rows: Sequence[Mapping[str, Any]], /) -> None:
        self._note_if_on_loop(query)
        with self.transaction():
            self._conn.executemany(self.sql(query), rows)

    def fetch_one(self, query: str, /, **params: Any) -> Row | None:
        self._note_if_on_loop(query)
        reader = self._reader(query)
        if reader is not None:
            row = reader.execute(self.sql(query), params).fetchone()
        else:
            with self._lock:
                row = self._conn.execute(self.sql(query), params).fetchone()
        return dict(row) if row is not None else None

    def fetch_all(self, query: str, /, **params: Any) -> list[Row]:
        self._note_if_on_loop(query)
        reader = self._reader(query)
        if reader is not None:
            rows = reader.execute(self.sql(query), params).fetchall()
        else:
            with self._lock:
                rows = self._conn.execute(self.sql(query), params).fetchall()
        return [dict(row) for row in rows]

    def applied_migrations(self) -> set[int]:
        self._note_if_on_loop("migrate")
        with self._lock:
            self._conn.execute(_MIGRATIONS_TABLE)
            rows = self._conn.execute("SELECT version FROM schema_migrations").fetchall()
        return {row[0] for row in rows}

    def _apply(self, migration: Migration) -> None:
        with self.transaction():
            for statement in _statements(migration.sql):
                self._conn.execute(statement)
            self._conn.execute(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                (migration.version, migration.name, time.time()),
            )

    def close(self) -> None:
        with self._readers_lock:
            self._closed = True
            readers, self._readers = self._readers, []
        for reader in readers:
            reader.close()
        with self._lock:
            self._conn.close()


def _statements(script: str) -> list[str]:
    """Split a migration into statements (migrations hold no semicolons in literals)."""
    return [part.strip() for part in script.split(";") if part.strip()]
