"""The client's retry strategy as a pure decision."""

from __future__ import annotations

import random

from wasmlet.client.retry import RetryPolicy


def policy(jitter: float = 0.0) -> RetryPolicy:
    return RetryPolicy(jitter=jitter, rng=random.Random(7))


def test_no_retry_on_4xx_except_429() -> None:
    for status in (400, 401, 404, 413):
        assert not policy().decide(0, status).retry
    assert policy().decide(0, 429).retry


def test_backoff_is_1_2_4_seconds_within_jitter() -> None:
    assert [policy().decide(a, 500).delay_s for a in (0, 1)] == [1.0, 2.0]
    jittered = policy(jitter=0.1)
    for attempt, base in ((0, 1.0), (1, 2.0), (2, 4.0)):
        delay = jittered.backoff(attempt)
        assert base * 0.9 <= delay <= base * 1.1


def test_at_most_three_attempts() -> None:
    assert policy().decide(1, 500).retry
    assert not policy().decide(2, 500).retry
    assert not policy().decide(2, None).retry


def test_retry_after_is_honoured_for_429_and_503() -> None:
    assert policy().decide(0, 429, retry_after=5).delay_s == 5
    assert policy().decide(0, 503, retry_after=2).delay_s == 2
    assert policy().decide(0, 500, retry_after=9).delay_s == 1.0


def test_connection_errors_are_retried() -> None:
    assert policy().decide(0, None).retry
