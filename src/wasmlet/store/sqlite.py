"""SQLite backend: one file, WAL mode, one connection guarded by a lock."""

from __future__ import annotations

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

    @contextmanager
    def transaction(self) -> Iterator[None]:
        with self._lock:
            if self._depth == 0:
                self._conn.execute("BEGIN IMMEDIATE")
            self._depth += 1
            try:
                yield
            except BaseException:
                self._depth -= 1
                if self._depth == 0:
                    self._conn.execute("ROLLBACK")
                raise
            self._depth -= 1
            if self._depth == 0:
                self._conn.execute("COMMIT")

    def execute(self, query: str, /, **params: Any) -> int:
        with self._lock:
            return self._conn.execute(self.sql(query), params).rowcount

    def execute_many(self, query: str, rows: Sequence[Mapping[str, Any]], /) -> None:
        with self.transaction():
            self._conn.executemany(self.sql(query), rows)

    def fetch_one(self, query: str, /, **params: Any) -> Row | None:
        with self._lock:
            row = self._conn.execute(self.sql(query), params).fetchone()
        return dict(row) if row is not None else None

    def fetch_all(self, query: str, /, **params: Any) -> list[Row]:
        with self._lock:
            rows = self._conn.execute(self.sql(query), params).fetchall()
        return [dict(row) for row in rows]

    def applied_migrations(self) -> set[int]:
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
        with self._lock:
            self._conn.close()


def _statements(script: str) -> list[str]:
    """Split a migration into statements (migrations hold no semicolons in literals)."""
    return [part.strip() for part in script.split(";") if part.strip()]
