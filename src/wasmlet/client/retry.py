"""The client's retry strategy, as a value that decides.

It honours what the server says: an error whose body says `retriable: false` (a 500
`function_error`, a 507, every 4xx) is never tried again. A 429 or 503 with
`Retry-After` is tried again after that many seconds (at most `max_delay_s`); other
retriable errors after exponential backoff (1 s, 2 s, 4 s by default, with jitter). A
call that got no answer is tried again only when the request was never sent
(`RequestNotSent`): after a read timeout the call may have run, so it is not resent
(`ResponseLost`). At most `max_attempts` attempts in all.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from wasmlet.backoff import Backoff
from wasmlet.errors import FunctionError

_AFTER_RETRY_AFTER = (429, 503)


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

    def decide(self, attempt: int, error: FunctionError) -> RetryDecision:
        """Whether to try again after attempt number `attempt` (0-based) ended in `error`."""
        if attempt + 1 >= self.max_attempts:
            return RetryDecision(False)
        if error.status in _AFTER_RETRY_AFTER and error.retry_after is not None:
            return RetryDecision(True, min(float(error.retry_after), self.max_delay_s))
        if not error.retriable:
            return RetryDecision(False)
        return RetryDecision(True, self.backoff(attempt))


NO_RETRY = RetryPolicy(max_attempts=1)
