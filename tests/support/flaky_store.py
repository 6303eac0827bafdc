"""A store that fails named queries on demand, in front of a real one: a database blip
at unit level, without a network in the way."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from wasmlet.errors import DbUnavailable
from wasmlet.store.base import Row, Store
from wasmlet.store.queries import Migration


class FlakyStore(Store):
    dialect = "sqlite"

    def __init__(self, inner: Store) -> None:
        self.dialect = inner.dialect
        super().__init__()
        self._inner = inner
        self._lock = threading.Lock()
        self._failing: dict[str, int] = {}
        self._passing: dict[str, int] = {}
        self.calls: Counter[str] = Counter()
        self.failures: Counter[str] = Counter()
        self.down = False

    def fail(self, query: str, times: int, *, after: int = 0) -> None:
        """After `after` more runs that work, the next `times` runs of `query` raise
        DbUnavailable, as if the database left."""
        with self._lock:
            self._failing[query] = times
            self._passing[query] = after

    def _run(self, query: str) -> None:
        with self._lock:
            self.calls[query] += 1
            if self._passing.get(query, 0) > 0 and not self.down:
                self._passing[query] -= 1
                return
            left = self._failing.get(query, 0)
            if left > 0 or self.down:
                self._failing[query] = left - 1
                self.failures[query] += 1
                raise DbUnavailable("Database unavailable: connection refused (fake)")

    def execute(self, query: str, /, **params: Any) -> int:
        self._run(query)
        return self._inner.execute(query, **params)

    def execute_many(self, query: str, rows: Sequence[Mapping[str, Any]], /) -> None:
        self._run(query)
        self._inner.execute_many(query, rows)

    def fetch_one(self, query: str, /, **params: Any) -> Row | None:
        self._run(query)
        return self._inner.fetch_one(query, **params)

    def fetch_all(self, query: str, /, **params: Any) -> list[Row]:
        self._run(query)
        return self._inner.fetch_all(query, **params)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        with self._inner.transaction():
            yield

    def applied_migrations(self) -> set[int]:
        return self._inner.applied_migrations()

    def _apply(self, migration: Migration) -> None:
        raise NotImplementedError("migrate the inner store")

    def close(self) -> None:
        self._inner.close()
