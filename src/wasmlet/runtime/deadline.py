"""Wall-clock deadlines by epoch interruption.

One thread per engine bumps the engine's epoch when the armed deadline passes; every
store is created with a deadline of one tick, so the running guest traps with
`TrapCode.INTERRUPT` and its CPU is freed at once. Arming costs no wake-up unless the
deadline is nearer than the thread's idle period.
"""

from __future__ import annotations

import threading
import time

import wasmtime

IDLE_PERIOD_S = 0.05


class DeadlineTimer:
    def __init__(self, engine: wasmtime.Engine) -> None:
        self._engine = engine
        self._cond = threading.Condition()
        self._at: float | None = None
        self._fired = False
        self._closed = False
        self._thread = threading.Thread(target=self._loop, name="wasmlet-deadline", daemon=True)
        self._thread.start()

    def arm(self, at: float) -> None:
        with self._cond:
            self._at = at
            self._fired = False
            if at - time.monotonic() < IDLE_PERIOD_S:
                self._cond.notify()

    def disarm(self) -> bool:
        """Stop the deadline; True when it had fired."""
        with self._cond:
            self._at = None
            return self._fired

    def interrupt_now(self) -> None:
        """Make the running guest trap at its next epoch check."""
        self._engine.increment_epoch()

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
                remaining = self._at - time.monotonic()
                if remaining <= 0:
                    self._engine.increment_epoch()
                    self._fired = True
                    self._at = None
                else:
                    self._cond.wait(min(remaining, IDLE_PERIOD_S))
