"""Bounded in-memory capture of a guest's stdout or stderr."""

from __future__ import annotations

from collections.abc import Callable


class BoundedOutput:
    """Collects writes up to `limit` bytes; past it, calls `on_overflow` once."""

    def __init__(self, limit: int, on_overflow: Callable[[], None] | None = None) -> None:
        self._chunks: list[bytes] = []
        self._size = 0
        self._limit = limit
        self._on_overflow = on_overflow
        self.overflowed = False

    def write(self, data: bytes) -> int:
        room = self._limit - self._size
        if len(data) > room:
            if room > 0:
                self._chunks.append(data[:room])
                self._size += room
            if not self.overflowed:
                self.overflowed = True
                if self._on_overflow is not None:
                    self._on_overflow()
            return len(data)
        self._chunks.append(data)
        self._size += len(data)
        return len(data)

    def getvalue(self) -> bytes:
        return b"".join(self._chunks)
