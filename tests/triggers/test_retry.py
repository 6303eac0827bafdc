"""Retry decisions: which errors, how many times, how long in between."""

from __future__ import annotations

import random

import pytest

from wasmlet import errors
from wasmlet.registry.models import RetryConfig
from wasmlet.triggers.queue import DeadReason
from wasmlet.triggers.retry import backoff_s, decide


@pytest.mark.parametrize(
    "error",
    [errors.FunctionTimeout(), errors.DbUnavailable(), errors.RuntimeCrash()],
    ids=lambda e: e.type,
)
def test_retriable_errors_are_retried_until_the_budget_is_spent(
    error: errors.FunctionError,
) -> None:
    config = RetryConfig(max_retries=3)
    rng = random.Random(1)
    assert [decide(config, n, error, rng).retry for n in (1, 2, 3, 4)] == [True, True, True, False]
    assert decide(config, 4, error, rng).dead_reason is DeadReason.MAX_RETRIES_EXCEEDED


@pytest.mark.parametrize(
    "error",
    [
        errors.UserCodeError(),
        errors.MemoryLimitExceeded(),
        errors.InvalidWasm(),
        errors.HostFunctionError(),
        errors.FunctionNotFound(),
    ],
    ids=lambda e: e.type,
)
def test_non_retriable_errors_go_straight_to_the_dead_letters(error: errors.FunctionError) -> None:
    decision = decide(RetryConfig(max_retries=3), 1, error, random.Random(1))
    assert not decision.retry
    assert decision.dead_reason is DeadReason.NON_RETRIABLE


def test_backoff_grows_is_capped_and_stays_in_its_jitter_window() -> None:
    config = RetryConfig(backoff_ms=1000, multiplier=2, max_backoff_ms=5000, jitter=0.1)
    rng = random.Random(7)
    for attempt, base in ((1, 1.0), (2, 2.0), (3, 4.0), (4, 5.0), (9, 5.0)):
        for _ in range(50):
            assert base * 0.9 <= backoff_s(config, attempt, rng) <= base * 1.1
    exact = RetryConfig(backoff_ms=200, multiplier=3, jitter=0)
    assert [backoff_s(exact, n, rng) for n in (1, 2, 3)] == pytest.approx([0.2, 0.6, 1.8])
