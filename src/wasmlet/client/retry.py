"""The spec's client retry strategy, as a value that decides.

No retry on a 4xx, except 429 and 503, which honour Retry-After; exponential
backoff (1 s, 2 s, 4 s by default, with jitter) on 5xx and connection errors; at
most `max_attempts` attempts in all.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from wasmlet.backoff import Backoff


@dataclass(frozen=True, slots=True)
class RetryDecision:
    retry: bool
    delay_s: float = 0.0


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 3
    base_delay_s: float = 1.0
    multiplier: float = 2.0
    jitter: float = 0.1
    max_delay_s: float = 30.0
    rng: random.Random = field(default_factory=random.Random, compare=False)

    def backoff(self, attempt: int) -> float:
        """Delay after failed attempt number `attempt` (0-based), jitter included."""
        policy = Backoff(self.base_delay_s, self.max_delay_s, self.multiplier, self.jitter)
        return policy.delay(attempt, self.rng)

    def decide(
        self, attempt: int, status: int | None, retry_after: float | None = None
    ) -> RetryDecision:
        """`status` None means the request never got an answer (connection error)."""
        if attempt + 1 >= self.max_attempts:
            return RetryDecision(False)
        if status is not None and status < 500 and status != 429:
            return RetryDecision(False)
        if status in (429, 503) and retry_after is not None:
            return RetryDecision(True, min(retry_after, self.max_delay_s))
        return RetryDecision(True, self.backoff(attempt))


NO_RETRY = RetryPolicy(max_attempts=1)
