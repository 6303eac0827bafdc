"""A function's `max_concurrency`, held across every node that shares a database.

The node's own `ConcurrencyLimiter` counts every call it admits. A call to a function
with `max_concurrency` then also takes one of the function's cluster slots:

- `LocalSlots` (SQLite, one node): the local count is the whole truth; a slot is free.
- `AdvisorySlots` (PostgreSQL, `store/advisory_slots.py`): slot i of a function is a
  session-level advisory lock, so a node that dies frees its slots with its session.

A call to a function without `max_concurrency` never comes here.
"""

from __future__ import annotations

from typing import Protocol


class Slot(Protocol):
    def release(self) -> None:
        """Give the slot back (at once, or soon: never later than needed)."""


class FunctionSlots(Protocol):
    async def acquire(self, function: str, limit: int) -> Slot | None:
        """One of `function`'s `limit` slots, or None when every one is taken.

        Raises `DbUnavailable` when the shared state cannot be reached: a limited
        function fails closed rather than run over its limit."""

    async def aclose(self) -> None: ...


class _FreeSlot:
    def release(self) -> None:
        return None


class LocalSlots:
    """One node: the local limiter already counted the call against the limit."""

    _free = _FreeSlot()

    async def acquire(self, function: str, limit: int) -> Slot | None:
        return self._free

    async def aclose(self) -> None:
        return None
