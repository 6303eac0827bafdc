"""The store interface both backends implement.

Queries are named (see `queries.py`); a backend runs them with keyword parameters
and returns rows as plain dicts. Each call is its own transaction unless it runs
inside `transaction()`.

Every call blocks its thread until the database answers, so none may run on the event
loop: coroutines hop to a thread (`asyncio.to_thread`, `run_in_threadpool`). A call
made on a thread that runs an event loop is logged once per query as
`store query on the event loop`, so a regression shows in the log (and in a test).
"""

from __future__ import annotations

import asyncio
import threading
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any

from wasmlet.store.queries import Migration, load_migrations, load_queries
from wasmlet.telemetry.logs import get_logger

Row = dict[str, Any]


class Store(ABC):
    dialect: str

    def __init__(self) -> None:
        self._queries = load_queries(self.dialect)
        self._on_loop_seen: set[str] = set()
        self._on_loop_lock = threading.Lock()

    def _note_if_on_loop(self, query: str) -> None:
        """Log (once per query) a call made on a thread that runs an event loop."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return
        with self._on_loop_lock:
            if query in self._on_loop_seen:
                return
            self._on_loop_seen.add(query)
        get_logger("store").warning(
            "store query on the event loop", query=query, dialect=self.dialect
        )

    def sql(self, name: str) -> str:
        return self._queries[name]

    @abstractmethod
    def execute(self, query: str, /, **params: Any) -> int:
        """Run a named statement; the number of rows it touched."""

    def execute_many(self, query: str, rows: Sequence[Mapping[str, Any]], /) -> None:
        """Run a named statement once per parameter set, in one transaction."""
        with self.transaction():
            for params in rows:
                self.execute(query, **params)

    def execute_each(self, statements: Sequence[tuple[str, Mapping[str, Any]]], /) -> list[int]:
        """Run named statements in order, in one transaction; the rows each one touched."""
        with self.transaction():
            return [self.execute(query, **params) for query, params in statements]

    @abstractmethod
    def fetch_one(self, query: str, /, **params: Any) -> Row | None: ...

    @abstractmethod
    def fetch_all(self, query: str, /, **params: Any) -> list[Row]: ...

    @abstractmethod
    def transaction(self) -> AbstractContextManager[None]:
        """Group the calls made inside into one transaction (re-entrant)."""

    @abstractmethod
    def applied_migrations(self) -> set[int]: ...

    @abstractmethod
    def _apply(self, migration: Migration) -> None: ...

    @abstractmethod
    def close(self) -> None: ...

    def migrate(self) -> list[int]:
        """Apply the migrations not yet applied, in order; the versions applied."""
        done = self.applied_migrations()
        applied = []
        for migration in load_migrations(self.dialect):
            if migration.version not in done:
                self._apply(migration)
                applied.append(migration.version)
        return applied

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
