"""The one backoff computation: growth, cap, bounds and the jitter window."""

from __future__ import annotations

import random

import pytest

from wasmlet.backoff import Backoff, Streak


def test_grows_by_the_multiplier_from_the_base() -> None:
    policy = Backoff(base_s=1.0, cap_s=60.0)
    assert [policy.delay(n) for n in range(5)] == [1.0, 2.0, 4.0, 8.0, 16.0]
    tripled = Backoff(base_s=0.2, cap_s=60.0, multiplier=3.0)
    assert [tripled.delay(n) for n in range(3)] == pytest.approx([0.2, 0.6, 1.8])


def test_is_capped_and_never_overflows() -> None:
    policy = Backoff(base_s=1.0, cap_s=5.0)
    assert [policy.delay(n) for n in (2, 3, 4, 50)] == [4.0, 5.0, 5.0, 5.0]
    assert policy.delay(10**9) == 5.0  # no OverflowError, no hang on a huge count
    assert Backoff(base_s=1.0, cap_s=5.0, multiplier=10.0).delay(10_000) == 5.0


def test_a_negative_failure_number_is_the_first_delay() -> None:
    assert Backoff(base_s=0.5, cap_s=5.0).delay(-3) == 0.5


def test_jitter_stays_in_its_window_and_is_not_constant() -> None:
    policy = Backoff(base_s=1.0, cap_s=5.0, jitter=0.1)
    rng = random.Random(7)
    for failure, base in ((0, 1.0), (1, 2.0), (2, 4.0), (3, 5.0), (9, 5.0)):
        delays = [policy.delay(failure, rng) for _ in range(200)]
        assert all(base * 0.9 <= d <= base * 1.1 for d in delays)
        assert len(set(delays)) > 100  # spread, not one value
        assert min(delays) < base < max(delays)


def test_a_seeded_random_source_repeats_the_same_delays() -> None:
    policy = Backoff(base_s=1.0, cap_s=30.0, jitter=0.5)
    first = [policy.delay(n, random.Random(42)) for n in range(6)]
    again = [policy.delay(n, random.Random(42)) for n in range(6)]
    assert first == again


def test_full_jitter_never_goes_below_zero() -> None:
    policy = Backoff(base_s=1.0, cap_s=1.0, jitter=1.0)
    rng = random.Random(3)
    assert all(0.0 <= policy.delay(0, rng) <= 2.0 for _ in range(500))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"base_s": -1.0, "cap_s": 1.0},
        {"base_s": 1.0, "cap_s": -1.0},
        {"base_s": 1.0, "cap_s": 1.0, "multiplier": 0.5},
        {"base_s": 1.0, "cap_s": 1.0, "jitter": 1.5},
    ],
)
def test_nonsense_policies_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        Backoff(**kwargs)


def test_a_streak_grows_with_each_failure_and_starts_over_after_a_success() -> None:
    streak = Streak(Backoff(base_s=1.0, cap_s=5.0))
    assert [streak.failed() for _ in range(5)] == [1.0, 2.0, 4.0, 5.0, 5.0]
    assert streak.failures == 5
    streak.succeeded()
    assert streak.failures == 0
    assert streak.failed() == 1.0
