"""Circuit breakers: closed, open, half-open, driven by an injected clock.

The breaker opens when, over a sliding window with at least `min_calls` calls, the
share of failures is over `failure_rate`. While open every call is refused; after
`cooldown_s` one probe is let through (half-open): its success closes the breaker,
its failure opens it again for another cool-down.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

Clock = Callable[[], float]


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(frozen=True, slots=True)
class BreakerPolicy:
    failure_rate: float = 0.5
    window_s: float = 300.0
    min_calls: int = 10
    cooldown_s: float = 30.0


Transition = Callable[[BreakerState, BreakerState, str], None]


class CircuitBreaker:
    def __init__(
        self, policy: BreakerPolicy, clock: Clock, on_transition: Transition | None = None
    ) -> None:
        self.policy = policy
        self._clock = clock
        self._on_transition = on_transition or (lambda old, new, why: None)
        self._calls: deque[tuple[float, bool]] = deque()
        self._failures = 0
        self.state = BreakerState.CLOSED
        self._opened_at = 0.0
        self._probe_out = False

    def allow(self) -> bool:
        """Whether a call may go ahead now (in half-open, only the one probe)."""
        if self.state is BreakerState.CLOSED:
            return True
        if self.state is BreakerState.OPEN:
            if self._clock() - self._opened_at < self.policy.cooldown_s:
                return False
            self._move(BreakerState.HALF_OPEN, "cool-down over: one probe")
        if self._probe_out:
            return False
        self._probe_out = True
        return True

    def refuses(self) -> bool:
        """Whether `allow()` would say no now, without taking the probe or moving state."""
        if self.state is BreakerState.OPEN:
            return self._clock() - self._opened_at < self.policy.cooldown_s
        return self.state is BreakerState.HALF_OPEN and self._probe_out

    def abandon(self) -> None:
        """An allowed call that never ran: free the probe slot without a verdict."""
        if self.state is BreakerState.HALF_OPEN:
            self._probe_out = False

    def retry_after(self) -> float:
        if self.state is not BreakerState.OPEN:
            return 0.0
        return max(0.0, self.policy.cooldown_s - (self._clock() - self._opened_at))

    def record(self, success: bool) -> None:
        now = self._clock()
        if self.state is BreakerState.HALF_OPEN:
            self._probe_out = False
            if success:
                self._calls.clear()
                self._failures = 0
                self._move(BreakerState.CLOSED, "probe succeeded")
            else:
                self._open(now, "probe failed")
            return
        if self.state is BreakerState.OPEN:
            return
        self._calls.append((now, success))
        self._failures += 0 if success else 1
        self._prune(now)
        total = len(self._calls)
        if total >= self.policy.min_calls and self._failures / total > self.policy.failure_rate:
            self._open(now, f"{self._failures} of {total} calls failed")

    def error_rate(self) -> float:
        self._prune(self._clock())
        return self._failures / len(self._calls) if self._calls else 0.0

    def _prune(self, now: float) -> None:
        horizon = now - self.policy.window_s
        while self._calls and self._calls[0][0] < horizon:
            _, ok = self._calls.popleft()
            self._failures -= 0 if ok else 1

    def _open(self, now: float, why: str) -> None:
        self._opened_at = now
        self._calls.clear()
        self._failures = 0
        self._move(BreakerState.OPEN, why)

    def _move(self, new: BreakerState, why: str) -> None:
        old, self.state = self.state, new
        if old is not new:
            self._on_transition(old, new, why)
