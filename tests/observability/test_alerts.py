"""The in-server alert evaluation, driven by a fake clock and a real `Metrics`.

Traffic is counted the way the invoker counts it (a failed invocation increments
`functions_invocations_total` with its status, `functions_errors_total`, and the
timeout or memory counter), then the clock moves 15 s and the evaluator ticks.
"""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import Iterator
from typing import Any

import pytest
import structlog

from wasmlet.observability.alerts import AlertEvaluator, AlertState
from wasmlet.telemetry.logs import configure_logging
from wasmlet.telemetry.metrics import Metrics

CRITICAL = "FunctionErrorRateHigh"
WARNING = "FunctionTimeoutRateHigh"
INFO = "FunctionMemoryLimitHit"
STEP_S = 15.0
START = 1_780_000_000.0  # 2026-05-28T20:26:40Z


class FakeClock:
    def __init__(self, now: float = START) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Harness:
    """Counts invocations into a real `Metrics` and ticks the evaluator every 15 s."""

    def __init__(self, log: io.StringIO) -> None:
        self.clock = FakeClock()
        self.metrics = Metrics()
        self.evaluator = AlertEvaluator(self.metrics, self.clock)
        self._log = log

    @property
    def elapsed(self) -> float:
        return self.clock.now - START

    def invoke(self, name: str, status: int, count: int = 1) -> None:
        if count == 0:
            return
        metrics = self.metrics
        metrics.invocations.labels(name, str(status)).inc(count)
        error_type = {500: "function_error", 504: "timeout", 507: "memory_limit_exceeded"}
        if status in error_type or status == 429:
            metrics.errors.labels(name, error_type.get(status, "too_many_requests")).inc(count)
        if status == 504:
            metrics.timeouts.labels(name).inc(count)
        if status == 507:
            metrics.memory_exceeded.labels(name).inc(count)

    def run(self, seconds: float, name: str = "", **per_step: int) -> None:
        """`seconds` of traffic, `per_step` invocations by status each 15 s (s200=8, ...)."""
        for _ in range(round(seconds / STEP_S)):
            for key, count in per_step.items():
                self.invoke(name, int(key.removeprefix("s")), count)
            self.clock.now += STEP_S
            self.evaluator.tick()

    def state(self, alert: str, name: str) -> AlertState:
        return self.evaluator.state(alert, name)

    def lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self._log.getvalue().splitlines()]

    def alert_lines(self) -> list[dict[str, Any]]:
        return [line for line in self.lines() if line["operation"] == "alerts"]


@pytest.fixture
def log() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    configure_logging(stream=stream)
    yield stream
    structlog.reset_defaults()


@pytest.fixture
def h(log: io.StringIO) -> Harness:
    return Harness(log)


# --- CRITICAL: error rate > 10% for 5 minutes ------------------------------------------


def test_20_percent_errors_fire_critical_after_the_for_duration(h: Harness) -> None:
    h.run(STEP_S, "flaky", s200=16, s500=4)
    assert h.state(CRITICAL, "flaky") is AlertState.PENDING
    h.run(300 - STEP_S, "flaky", s200=16, s500=4)
    assert h.state(CRITICAL, "flaky") is AlertState.PENDING  # 4m45s pending: not yet
    assert h.evaluator.firing() == []
    assert h.alert_lines() == []

    h.run(STEP_S, "flaky", s200=16, s500=4)  # 5 minutes pending: fires
    assert h.state(CRITICAL, "flaky") is AlertState.FIRING
    [alert] = h.evaluator.firing()
    assert alert["alert"] == CRITICAL
    assert alert["severity"] == "critical"
    assert alert["function"] == "flaky"
    assert alert["value"] == pytest.approx(0.2)
    assert alert["summary"] == "Function flaky: 20% of invocations fail"
    assert alert["active_since"] == "2026-05-28T20:26:55+00:00"
    assert alert["firing_since"] == "2026-05-28T20:31:55+00:00"
    [line] = h.alert_lines()
    assert line["message"] == "alert firing"
    assert line["level"] == "ERROR"
    assert line["service"] == "functions"
    assert {k: line[k] for k in ("alert", "severity", "function", "state")} == {
        "alert": CRITICAL, "severity": "critical", "function": "flaky", "state": "firing",
    }  # fmt: skip
    assert line["value"] == pytest.approx(0.2)
    assert "timestamp" in line

    h.run(600, "flaky", s200=16, s500=4)  # still firing: no more lines
    assert len(h.alert_lines()) == 1


def test_5_percent_errors_never_fire(h: Harness) -> None:
    for _ in range(80):
        h.run(STEP_S, "mostly-fine", s200=19, s500=1)
        assert h.state(CRITICAL, "mostly-fine") is AlertState.INACTIVE
    assert h.evaluator.firing() == []
    assert h.alert_lines() == []


def test_exactly_10_percent_does_not_fire(h: Harness) -> None:
    h.run(1200, "borderline", s200=9, s500=1)
    assert h.state(CRITICAL, "borderline") is AlertState.INACTIVE


def test_every_5xx_counts_and_no_4xx_does(h: Harness) -> None:
    h.run(1200, "misused", s200=5, s400=3, s429=2)  # 50% client errors
    assert h.state(CRITICAL, "misused") is AlertState.INACTIVE
    h.run(600, "down", s200=8, s503=1, s507=1)  # 20% server errors, none of them 500
    assert h.state(CRITICAL, "down") is AlertState.FIRING


def test_errors_for_less_than_the_for_duration_do_not_fire(h: Harness) -> None:
    h.run(300, "blip", s200=8)
    h.run(60, "blip", s200=8, s500=8)  # a minute at 50%: over 10% for ~4 minutes
    h.run(600, "blip", s200=8)
    assert h.evaluator.firing() == []
    assert h.alert_lines() == []


def test_onset_after_healthy_traffic_needs_half_a_window_then_the_for_duration(
    h: Harness,
) -> None:
    h.run(600, "svc", s200=20)
    onset = h.elapsed
    h.run(150, "svc", s200=16, s500=4)  # 40 errors of 400 in the window: exactly 10%
    assert h.state(CRITICAL, "svc") is AlertState.INACTIVE
    h.run(STEP_S, "svc", s200=16, s500=4)  # 11%
    assert h.state(CRITICAL, "svc") is AlertState.PENDING
    h.run(300 - STEP_S, "svc", s200=16, s500=4)
    assert h.state(CRITICAL, "svc") is AlertState.PENDING
    h.run(STEP_S, "svc", s200=16, s500=4)
    assert h.state(CRITICAL, "svc") is AlertState.FIRING
    assert h.elapsed - onset == 165 + 300


def test_recovery_resolves_with_exactly_one_line(h: Harness) -> None:
    h.run(600, "flaky", s200=16, s500=4)
    h.run(600, "flaky", s200=20)
    assert h.evaluator.firing() == []
    firing, resolved = h.alert_lines()
    assert firing["message"] == "alert firing"
    assert resolved["message"] == "alert resolved"
    assert resolved["level"] == "INFO"
    assert resolved["state"] == "resolved"
    assert (resolved["alert"], resolved["severity"], resolved["function"]) == (
        CRITICAL, "critical", "flaky",
    )  # fmt: skip
    assert resolved["value"] <= 0.1


def test_no_traffic_fires_nothing_and_resolves_a_firing_alert(h: Harness) -> None:
    h.invoke("idle", 500, 50)  # counted before any window: old news
    h.invoke("idle", 504, 30)
    h.invoke("idle", 507, 5)
    h.run(1200)
    assert h.evaluator.active() == []

    h.run(600, "flaky", s200=16, s500=4)
    assert h.state(CRITICAL, "flaky") is AlertState.FIRING
    h.run(300)  # traffic stops: no rate, no alert
    assert h.state(CRITICAL, "flaky") is AlertState.INACTIVE
    resolved = h.alert_lines()[-1]
    assert resolved["message"] == "alert resolved"
    assert resolved["value"] is None


def test_alerts_are_per_function(h: Harness) -> None:
    for _ in range(40):
        h.invoke("fine", 200, 20)
        h.run(STEP_S, "flaky", s200=16, s500=4)
    assert [(a["alert"], a["function"]) for a in h.evaluator.firing()] == [(CRITICAL, "flaky")]


# --- WARNING: timeout rate > 5% ---------------------------------------------------------


def test_6_percent_timeouts_fire_warning_at_once(h: Harness) -> None:
    h.run(STEP_S, "slow", s200=47, s504=3)
    assert h.state(WARNING, "slow") is AlertState.FIRING
    assert h.state(CRITICAL, "slow") is AlertState.INACTIVE  # 6% errors too: under 10%
    [alert] = h.evaluator.firing()
    assert (alert["alert"], alert["severity"]) == (WARNING, "warning")
    assert alert["value"] == pytest.approx(0.06)
    assert alert["summary"] == "Function slow: 6% of invocations time out"
    [line] = h.alert_lines()
    assert (line["message"], line["level"], line["alert"], line["function"]) == (
        "alert firing", "WARNING", WARNING, "slow",
    )  # fmt: skip
    h.run(600, "slow", s200=47, s504=3)
    assert len(h.alert_lines()) == 1
    h.run(600, "slow", s200=50)
    assert h.state(WARNING, "slow") is AlertState.INACTIVE
    assert [line["message"] for line in h.alert_lines()] == ["alert firing", "alert resolved"]


def test_4_percent_timeouts_do_not_fire(h: Harness) -> None:
    h.run(1200, "sluggish", s200=48, s504=2)
    assert h.evaluator.active() == []
    assert h.alert_lines() == []


# --- INFO: memory limit hit -------------------------------------------------------------


def test_a_memory_hit_fires_info_at_once_and_resolves_a_window_later(h: Harness) -> None:
    h.run(600, "hungry", s200=10)
    h.run(STEP_S, "hungry", s200=9, s507=1)
    hit = h.elapsed
    assert h.state(INFO, "hungry") is AlertState.FIRING
    [alert] = h.evaluator.firing()
    assert (alert["alert"], alert["severity"], alert["value"]) == (INFO, "info", 1)
    assert alert["summary"] == "Function hungry hit its memory limit"
    h.run(300 - STEP_S, "hungry", s200=10)
    assert h.state(INFO, "hungry") is AlertState.FIRING
    h.run(STEP_S, "hungry", s200=10)
    assert h.state(INFO, "hungry") is AlertState.INACTIVE
    assert h.elapsed - hit == 300
    firing, resolved = h.alert_lines()
    assert (firing["message"], firing["level"], firing["value"]) == ("alert firing", "INFO", 1)
    assert (resolved["message"], resolved["value"]) == ("alert resolved", 0)


def test_the_first_hit_of_a_function_never_seen_before_fires(h: Harness) -> None:
    h.run(STEP_S, "brand-new", s507=1)
    assert h.state(INFO, "brand-new") is AlertState.FIRING


# --- the evaluator itself ---------------------------------------------------------------


def test_firing_lists_the_most_severe_first(h: Harness) -> None:
    h.run(600, "a", s200=8, s500=1, s504=1, s507=1)
    assert [a["alert"] for a in h.evaluator.firing()] == [CRITICAL, WARNING, INFO]


def test_history_stays_bounded(h: Harness) -> None:
    h.run(3600, "busy", s200=10)
    assert len(h.evaluator._samples) <= 22  # the window's 20 steps, the base and now
    for _ in range(1000):  # ticked far too often: capped at history_s / interval_s
        h.clock.now += 0.1
        h.evaluator.tick()
    assert len(h.evaluator._samples) <= 40


def test_the_background_task_ticks_until_closed(log: io.StringIO) -> None:
    metrics = Metrics()
    calls = 0

    def clock() -> float:  # the first tick's reading fails; then time stands still
        nonlocal calls
        calls += 1
        if calls == 2:
            raise RuntimeError("clock broke")
        return START if calls == 1 else START + STEP_S

    async def scenario() -> AlertEvaluator:
        evaluator = AlertEvaluator(metrics, clock, interval_s=0.01)
        evaluator.start()
        metrics.invocations.labels("hungry", "507").inc()
        metrics.memory_exceeded.labels("hungry").inc()
        async with asyncio.timeout(5):
            while not evaluator.firing():
                await asyncio.sleep(0.01)
        await evaluator.aclose()
        return evaluator

    evaluator = asyncio.run(scenario())
    assert [a["function"] for a in evaluator.firing()] == ["hungry"]
    lines = [json.loads(line) for line in log.getvalue().splitlines()]
    assert lines[0]["message"] == "alert evaluation failed"  # logged, and the loop goes on
    assert "clock broke" in lines[0]["error"]
    assert [line["message"] for line in lines[1:]] == ["alert firing"]
