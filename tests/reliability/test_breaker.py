"""The circuit breaker driven by a fake clock."""

from __future__ import annotations

from wasmlet.reliability.breaker import BreakerPolicy, BreakerState, CircuitBreaker


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def state(breaker: CircuitBreaker) -> BreakerState:
    """Read through a call: mypy would otherwise narrow the attribute between checks."""
    return breaker.state


def make(clock: Clock) -> tuple[CircuitBreaker, list[tuple[str, str]]]:
    moves: list[tuple[str, str]] = []
    breaker = CircuitBreaker(
        BreakerPolicy(failure_rate=0.5, window_s=300, min_calls=4, cooldown_s=30),
        clock,
        on_transition=lambda old, new, why: moves.append((old, new)),
    )
    return breaker, moves


def test_opens_over_the_threshold_only_with_enough_calls() -> None:
    clock = Clock()
    breaker, moves = make(clock)
    for _ in range(3):
        breaker.record(False)
    assert state(breaker) is BreakerState.CLOSED  # 3 calls < min_calls
    breaker.record(True)
    assert state(breaker) is BreakerState.OPEN  # 3 failures of 4 calls: 75% > 50%
    assert moves == [("closed", "open")]


def test_exactly_half_does_not_open_more_than_half_does() -> None:
    clock = Clock()
    breaker, _ = make(clock)
    for ok in (True, False, True, False):
        breaker.record(ok)
    assert state(breaker) is BreakerState.CLOSED
    breaker.record(False)
    assert state(breaker) is BreakerState.OPEN


def test_open_refuses_then_one_probe_then_closes_on_success() -> None:
    clock = Clock()
    breaker, moves = make(clock)
    for _ in range(4):
        breaker.record(False)
    assert state(breaker) is BreakerState.OPEN
    assert not breaker.allow()
    assert breaker.retry_after() == 30
    clock.now += 29.9
    assert not breaker.allow()
    clock.now += 0.2
    assert breaker.allow()  # the probe
    assert state(breaker) is BreakerState.HALF_OPEN
    assert not breaker.allow()  # only one
    breaker.record(True)
    assert state(breaker) is BreakerState.CLOSED
    assert breaker.allow()
    assert moves == [("closed", "open"), ("open", "half_open"), ("half_open", "closed")]


def test_failed_probe_reopens_for_another_cooldown() -> None:
    clock = Clock()
    breaker, moves = make(clock)
    for _ in range(4):
        breaker.record(False)
    clock.now += 31
    assert breaker.allow()
    breaker.record(False)
    assert state(breaker) is BreakerState.OPEN
    assert not breaker.allow()
    clock.now += 31
    assert breaker.allow()
    assert moves[-2:] == [("half_open", "open"), ("open", "half_open")]


def test_old_failures_leave_the_window() -> None:
    clock = Clock()
    breaker, _ = make(clock)
    for _ in range(3):
        breaker.record(False)
    clock.now += 301
    breaker.record(False)
    assert state(breaker) is BreakerState.CLOSED
    assert breaker.error_rate() == 1.0


def test_an_abandoned_probe_lets_the_next_one_through() -> None:
    clock = Clock()
    breaker, _ = make(clock)
    for _ in range(4):
        breaker.record(False)
    clock.now += 31
    assert breaker.allow()
    assert not breaker.allow()
    breaker.abandon()
    assert breaker.allow()
    assert state(breaker) is BreakerState.HALF_OPEN
