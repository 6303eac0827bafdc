"""The client's retry strategy as a pure decision over the error of an attempt."""

from __future__ import annotations

import random

import pytest

from wasmlet import errors
from wasmlet.client.retry import RetryPolicy


def policy(jitter: float = 0.0) -> RetryPolicy:
    return RetryPolicy(jitter=jitter, rng=random.Random(7))


@pytest.mark.parametrize(
    "error",
    [
        errors.InvalidPayload(),
        errors.Unauthorized(),
        errors.FunctionNotFound(),
        errors.MethodNotAllowed(),
        errors.PayloadTooLarge(),
        errors.UserCodeError(),  # 500 function_error: the function failed, it would again
        errors.MemoryLimitExceeded(),  # 507
        errors.HostFunctionError(),
        errors.ResponseLost(),  # sent, no answer: it may have run, never resent
        errors.UnexpectedResponse(status=502),  # a proxy's page: the call may have run
        errors.UnexpectedResponse(status=504),
    ],
    ids=lambda e: f"{e.status}-{e.type}",
)
def test_what_is_not_retriable_is_never_retried(error: errors.FunctionError) -> None:
    assert not policy().decide(0, error).retry


@pytest.mark.parametrize(
    "error",
    [
        errors.FunctionTimeout(),
        errors.RuntimeCrash(),
        errors.TransientHostFunctionError(),
        errors.RequestNotSent(),  # connecting failed: nothing was sent
        errors.UnexpectedResponse(status=500, error_type="new_kind", retriable=True),
    ],
    ids=lambda e: f"{e.status}-{e.type}",
)
def test_retriable_errors_back_off_1_2_seconds(error: errors.FunctionError) -> None:
    assert [policy().decide(a, error).delay_s for a in (0, 1)] == [1.0, 2.0]


def test_backoff_is_1_2_4_seconds_within_jitter() -> None:
    jittered = policy(jitter=0.1)
    for attempt, base in ((0, 1.0), (1, 2.0), (2, 4.0)):
        delay = jittered.backoff(attempt)
        assert base * 0.9 <= delay <= base * 1.1


def test_at_most_three_attempts() -> None:
    timeout = errors.FunctionTimeout()
    assert policy().decide(1, timeout).retry
    assert not policy().decide(2, timeout).retry
    assert not policy().decide(2, errors.RequestNotSent()).retry


def test_retry_after_is_honoured_for_429_and_503_and_bounded() -> None:
    assert policy().decide(0, errors.TooManyRequests(retry_after=5)).delay_s == 5
    assert policy().decide(0, errors.CircuitOpen(retry_after=2)).delay_s == 2
    assert policy().decide(0, errors.DbUnavailable(retry_after=3)).delay_s == 3
    proxy_busy = errors.UnexpectedResponse(status=503, retry_after=4)
    assert policy().decide(0, proxy_busy).delay_s == 4
    assert policy().decide(0, errors.TooManyRequests(retry_after=86400)).delay_s == 30.0
    assert policy().decide(0, errors.FunctionTimeout(retry_after=9)).delay_s == 1.0
    assert not policy().decide(0, errors.CircuitOpen()).retry  # no Retry-After: not retriable
