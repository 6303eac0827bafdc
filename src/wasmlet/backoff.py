"""Exponential backoff with jitter: the one place wasmlet computes a retry delay.

Every loop that tries again after a failure (the client's retries, a queued job's
retries, the scheduler after a failing tick, the dispatcher through a database
outage, a job's ending written until it lands) takes its delay from `Backoff.delay`:

    delay(n) = min(base_s * multiplier ** n, cap_s), moved by a uniform random amount
               of at most `jitter` times itself (never below zero)

for the failure numbered `n` from 0. The random source is passed in, so a test gives a
seeded `random.Random` and a caller that wants no randomness gives `jitter=0`. Sleeping
is the caller's business: this module only computes, so the clock stays with the
caller (an injected `sleep` in the scheduler, `asyncio.sleep` elsewhere).

`Streak` is the state of a loop that backs off on consecutive failures and starts
over after a success.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

_MAX_EXPONENT = 1024  # past this, every useful multiplier has long reached the cap


@dataclass(frozen=True, slots=True)
class Backoff:
    """A backoff policy: first delay, growth, cap and jitter (a fraction, 0 to 1)."""

    base_s: float
    cap_s: float
    multiplier: float = 2.0
    jitter: float = 0.0

    def __post_init__(self) -> None:
        if self.base_s < 0 or self.cap_s < 0:
            raise ValueError("backoff delays cannot be negative")
        if self.multiplier < 1:
            raise ValueError("a backoff multiplier is at least 1")
        if not 0 <= self.jitter <= 1:
            raise ValueError("backoff jitter is a fraction between 0 and 1")

    def delay(self, failure: int, rng: random.Random | None = None) -> float:
        """Seconds to wait after failure number `failure` (0 for the first)."""
        exponent = min(max(failure, 0), _MAX_EXPONENT)
        try:
            grown = self.base_s * self.multiplier**exponent
        except OverflowError:
            grown = self.cap_s
        base = min(grown, self.cap_s)
        if not self.jitter or not base:
            return base
        spread = base * self.jitter
        moved = rng.uniform(-spread, spread) if rng is not None else random.uniform(-spread, spread)
        return max(0.0, base + moved)


@dataclass(slots=True)
class Streak:
    """Consecutive failures of one loop: each `failed()` gives the next delay,
    `succeeded()` starts the count over."""

    policy: Backoff
    rng: random.Random | None = None
    failures: int = field(default=0, init=False)

    def failed(self) -> float:
        self.failures += 1
        return self.policy.delay(self.failures - 1, self.rng)

    def succeeded(self) -> None:
        self.failures = 0
