"""Admission control: a global limit and optional per-function limits.

A synchronous invocation over a limit is refused at once (429 with Retry-After);
admission never waits, so a flood of calls cannot pile up inside the server.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass


@dataclass(eq=False)
class Permit:
    limiter: ConcurrencyLimiter
    function: str
    released: bool = False

    def release(self) -> None:
        if not self.released:
            self.released = True
            self.limiter._release(self.function)

    def __enter__(self) -> Permit:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


class ConcurrencyLimiter:
    """Counts admitted invocations; all calls come from one event loop."""

    def __init__(self, global_limit: int) -> None:
        self.global_limit = global_limit
        self.in_flight = 0
        self._per_function: Counter[str] = Counter()

    def try_acquire(self, function: str, function_limit: int | None) -> Permit | None:
        if self.in_flight >= self.global_limit:
            return None
        if function_limit is not None and self._per_function[function] >= function_limit:
            return None
        self.in_flight += 1
        self._per_function[function] += 1
        return Permit(self, function)

    def in_flight_for(self, function: str) -> int:
        return self._per_function[function]

    def _release(self, function: str) -> None:
        self.in_flight -= 1
        self._per_function[function] -= 1
        if self._per_function[function] <= 0:
            del self._per_function[function]
