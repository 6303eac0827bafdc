"""Caps on outbound requests in flight: in all, and per function.

A request waits for a slot until its deadline (the function's remaining time): a
burst is smoothed rather than refused, and a function never holds more than its
share, so one noisy function cannot take every slot.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter


class Slots:
    def __init__(self, total: int, per_function: int) -> None:
        self.total = total
        self.per_function = per_function
        self._used: Counter[str] = Counter()
        self._in_use = 0
        self._waiters: list[asyncio.Future[None]] = []

    @property
    def in_use(self) -> int:
        return self._in_use

    def _free(self, function: str) -> bool:
        return self._in_use < self.total and self._used[function] < self.per_function

    async def acquire(self, function: str, timeout: float) -> bool:
        """Take a slot for `function`; False when none was free within `timeout` seconds."""
        until = time.monotonic() + timeout
        loop = asyncio.get_running_loop()
        while not self._free(function):
            waiter: asyncio.Future[None] = loop.create_future()
            self._waiters.append(waiter)
            try:
                async with asyncio.timeout(max(0.0, until - time.monotonic())):
                    await waiter
            except TimeoutError:
                return False
            finally:
                with contextlib.suppress(ValueError):
                    self._waiters.remove(waiter)
        self._in_use += 1
        self._used[function] += 1
        return True

    def release(self, function: str) -> None:
        self._in_use -= 1
        self._used[function] -= 1
        if self._used[function] <= 0:
            del self._used[function]
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)
