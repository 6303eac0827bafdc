"""When a failed asynchronous invocation is tried again, and after how long.

Retriable kinds are the spec's: timeout, database connection failure (503
`db_unavailable`) and a crashed runtime. Invalid wasm, the memory limit and errors
in user code are not retried: trying again cannot help. A decision is a value, so
the dispatcher only carries it out.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from wasmlet.backoff import Backoff
from wasmlet.errors import FunctionError
from wasmlet.registry.models import RetryConfig
from wasmlet.triggers.queue import DeadReason


@dataclass(frozen=True, slots=True)
class RetryDecision:
    retry: bool
    delay_s: float = 0.0
    dead_reason: DeadReason | None = None


def backoff_s(config: RetryConfig, attempt: int, rng: random.Random) -> float:
    """Delay after failed attempt number `attempt` (1 for the first), jitter included."""
    policy = Backoff(
        base_s=config.backoff_ms / 1000,
        cap_s=config.max_backoff_ms / 1000,
        multiplier=config.multiplier,
        jitter=config.jitter,
    )
    return policy.delay(attempt - 1, rng)


def decide(
    config: RetryConfig, attempts_made: int, error: FunctionError, rng: random.Random
) -> RetryDecision:
    if not error.retriable:
        return RetryDecision(False, dead_reason=DeadReason.NON_RETRIABLE)
    if attempts_made > config.max_retries:
        return RetryDecision(False, dead_reason=DeadReason.MAX_RETRIES_EXCEEDED)
    return RetryDecision(True, delay_s=backoff_s(config, attempts_made, rng))
