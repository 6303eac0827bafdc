"""Wall-clock deadlines by epoch interruption.

One thread per engine bumps the engine's epoch when the armed deadline passes; every
store is created with a deadline of one tick, so the running guest traps with
`TrapCode.INTERRUPT` and its CPU is freed at once. While armed, the thread also runs
a watch (the output-size check) every `WATCH_PERIOD_S` and interrupts the guest when
it says so. Arming costs no wake-up unless the deadline is nearer than that period.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from enum import Enum

import wasmtime

WATCH_PERIOD_S = 0.02
IDLE_PERIOD_S = 0.05


class Interruption(Enum):
    NONE = "none"
    DEADLINE = "deadline"
    WATCH = "watch"


class DeadlineTimer:
    def __init__(self, engine: wasmtime.Engine) -> None:
        self._engine = engine
        self._cond = threading.Condition()
        self._at: float | None = None
        self._watch: Callable[[], bool] | None = None
        self._fired = Interruption.NONE
        self._closed = False
        self._thread = threading.Thread(target=self._loop, name="wasmlet-deadline", daemon=True)
        self._thread.start()

    def arm(self, at: float, watch: Callable[[], bool] | None = None) -> None:
        with self._cond:
            self._at = at
            self._watch = watch
            self._fired = Interruption.NONE
            if at - time.monotonic() < WATCH_PERIOD_S:
                self._cond.notify()

    def disarm(self) -> Interruption:
        """Stop watching; what interrupted the guest, if anything did."""
        with self._cond:
            self._at = None
            self._watch = None
            return self._fired

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify()
        self._thread.join(timeout=1)

    def _loop(self) -> None:
        with self._cond:
            while not self._closed:
                if self._at is None:
                    self._cond.wait(IDLE_PERIOD_S)
                    continue
                if self._watch is not None and self._watch():
                    self._interrupt(Interruption.WATCH)
                    continue
                remaining = self._at - time.monotonic()
                if remaining <= 0:
                    self._interrupt(Interruption.DEADLINE)
                else:
                    self._cond.wait(min(remaining, WATCH_PERIOD_S))

    def _interrupt(self, why: Interruption) -> None:
        self._engine.increment_epoch()
        self._fired = why
        self._at = None
        self._watch = None
