"""The spec's three alerts, evaluated inside the server for users without Prometheus.

The rules are those of ``deploy/prometheus/alerts.yml``, on the same counters, per
function, over the same 5-minute window and with the same ``for`` durations:

=========================  ========  ===========================================  =====
alert                      severity  value (per function, last 5 minutes)         for
=========================  ========  ===========================================  =====
FunctionErrorRateHigh      critical  5xx invocations / invocations > 0.10         5m
FunctionTimeoutRateHigh    warning   timeouts / invocations > 0.05                0
FunctionMemoryLimitHit     info      memory-limit hits > 0                        0
=========================  ========  ===========================================  =====

`AlertEvaluator.tick` (every 15 s, from the app's lifespan) samples the counters from
the app's `Metrics` registry and keeps the samples of the last window. A rule's value
is computed from the difference between the newest sample and the newest one at least
a window old (or the first sample, while the server is younger than the window). The
counters live in this process and start at zero, so the differences are exact where
Prometheus' ``rate()`` extrapolates; the decisions are the same. With no invocation in
the window a rate has no value, and no alert fires (Prometheus: 0/0 is NaN).

Each (alert, function) is inactive, pending (condition true for less than ``for``) or
firing, like a Prometheus alert. Becoming firing and resolving each log one line
(operation ``alerts``, fields alert, severity, function, value, state); pending alone
logs nothing.
"""

from __future__ import annotations

import asyncio
import math
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from wasmlet.observability.logs import get_logger
from wasmlet.observability.metrics import Metrics

WINDOW_S = 300.0
INTERVAL_S = 15.0
HISTORY_S = 600.0

Clock = Callable[[], float]


class Severity(StrEnum):
    CRITICAL = "critical"
    WARNING = "warning"
    INFO = "info"


class AlertState(StrEnum):
    INACTIVE = "inactive"
    PENDING = "pending"
    FIRING = "firing"


@dataclass(frozen=True, slots=True)
class Counts:
    """One function's counters at one moment (or their increase over a window)."""

    invocations: float = 0.0
    server_errors: float = 0.0  # invocations whose final status is 5xx
    timeouts: float = 0.0
    memory_exceeded: float = 0.0

    def since(self, earlier: Counts) -> Counts:
        return Counts(
            max(0.0, self.invocations - earlier.invocations),
            max(0.0, self.server_errors - earlier.server_errors),
            max(0.0, self.timeouts - earlier.timeouts),
            max(0.0, self.memory_exceeded - earlier.memory_exceeded),
        )


def error_rate(window: Counts) -> float | None:
    return window.server_errors / window.invocations if window.invocations else None


def timeout_rate(window: Counts) -> float | None:
    return window.timeouts / window.invocations if window.invocations else None


def memory_hits(window: Counts) -> float | None:
    return window.memory_exceeded


def _percent(value: float) -> str:
    return f"{value * 100:.4g}%"


@dataclass(frozen=True, slots=True)
class AlertRule:
    """Fires for a function while ``value(increase over the window) > threshold``."""

    name: str
    severity: Severity
    threshold: float
    for_s: float
    value: Callable[[Counts], float | None]
    summary: str  # str.format fields: function, value, percent
    runbook: str  # str.format field: function

    def describe(self, function: str, value: float) -> tuple[str, str]:
        fields = {"function": function, "value": value, "percent": _percent(value)}
        return self.summary.format(**fields), self.runbook.format(**fields)


RULES: tuple[AlertRule, ...] = (
    AlertRule(
        "FunctionErrorRateHigh", Severity.CRITICAL, 0.10, 300.0, error_rate,
        "Function {function}: {percent} of invocations fail",
        "Check the function's logs (GET /functions/v1/functions/{function}/logs) and "
        "functions_errors_total for the error type; fix the function code (500), "
        "optimize it or raise its timeout (504) or memory limit (507).",
    ),
    AlertRule(
        "FunctionTimeoutRateHigh", Severity.WARNING, 0.05, 0.0, timeout_rate,
        "Function {function}: {percent} of invocations time out",
        "Optimize the function or increase its timeout "
        "(PATCH /functions/v1/functions/{function} timeout_ms).",
    ),
    AlertRule(
        "FunctionMemoryLimitHit", Severity.INFO, 0.0, 0.0, memory_hits,
        "Function {function} hit its memory limit",
        "Optimize the function's memory usage or increase its limit "
        "(PATCH /functions/v1/functions/{function} memory_mb).",
    ),
)  # fmt: skip

_SEVERITY_RANK = {Severity.CRITICAL: 0, Severity.WARNING: 1, Severity.INFO: 2}
_LOG_LEVEL = {Severity.CRITICAL: "error", Severity.WARNING: "warning", Severity.INFO: "info"}
# Sample name -> index in Counts' fields.
_SAMPLES = {
    "functions_invocations_total": 0,
    "functions_timeout_total": 2,
    "functions_memory_exceeded_total": 3,
}


@dataclass(slots=True)
class _Active:
    state: AlertState
    active_since: float
    value: float
    firing_since: float | None = None


@dataclass(frozen=True, slots=True)
class _Sample:
    at: float
    counts: dict[str, Counts]


def read_counts(metrics: Metrics) -> dict[str, Counts]:
    """Every function's counters, read from the registry's samples."""
    values: dict[str, list[float]] = {}
    for family in metrics.registry.collect():
        for sample in family.samples:
            index = _SAMPLES.get(sample.name)
            if index is None:
                continue
            row = values.setdefault(sample.labels["name"], [0.0, 0.0, 0.0, 0.0])
            row[index] += sample.value
            if index == 0 and _is_server_error(sample.labels.get("status", "")):
                row[1] += sample.value
    return {name: Counts(*row) for name, row in values.items()}


def _is_server_error(status: str) -> bool:
    return len(status) == 3 and status.startswith("5") and status.isdigit()


class AlertEvaluator:
    """Samples the counters on each `tick` and keeps per-(alert, function) state.

    `clock` returns wall-clock seconds (``time.time`` in the server; tests pass a fake).
    The samples kept are those of the last window plus the one just before it, at most
    ``history_s / interval_s`` of them, so memory stays bounded however often `tick`
    is called (called far more often than every `interval_s`, the window shrinks).
    """

    def __init__(
        self,
        metrics: Metrics,
        clock: Clock,
        *,
        rules: Iterable[AlertRule] = RULES,
        window_s: float = WINDOW_S,
        interval_s: float = INTERVAL_S,
        history_s: float = HISTORY_S,
    ) -> None:
        self._metrics = metrics
        self._clock = clock
        self._rules = tuple(rules)
        self._window_s = window_s
        self.interval_s = interval_s
        self._samples: deque[_Sample] = deque(maxlen=max(2, math.ceil(history_s / interval_s)))
        self._active: dict[tuple[str, str], _Active] = {}
        self._log = get_logger("alerts")
        self._task: asyncio.Task[None] | None = None
        self._sample()

    def tick(self) -> None:
        """Take a sample and evaluate every rule for every function."""
        now = self._sample().at
        window = self._window(now)
        for rule in self._rules:
            values = {name: rule.value(counts) for name, counts in window.items()}
            names = set(values) | {fn for (alert, fn) in self._active if alert == rule.name}
            for function in sorted(names):
                self._evaluate(rule, function, values.get(function), now)

    def active(self) -> list[dict[str, Any]]:
        """Pending and firing alerts, most severe first."""
        rules = {rule.name: rule for rule in self._rules}
        ordered = sorted(
            self._active.items(),
            key=lambda item: (_SEVERITY_RANK[rules[item[0][0]].severity], item[0]),
        )
        listed = []
        for (alert, function), active in ordered:
            rule = rules[alert]
            summary, runbook = rule.describe(function, active.value)
            listed.append(
                {
                    "alert": alert,
                    "severity": str(rule.severity),
                    "function": function,
                    "state": str(active.state),
                    "value": round(active.value, 6),
                    "threshold": rule.threshold,
                    "active_since": _iso(active.active_since),
                    "firing_since": _iso(active.firing_since),
                    "summary": summary,
                    "runbook": runbook,
                }
            )
        return listed

    def firing(self) -> list[dict[str, Any]]:
        """The alerts firing now, most severe first (GET /functions/v1/alerts)."""
        return [alert for alert in self.active() if alert["state"] == AlertState.FIRING]

    def state(self, alert: str, function: str) -> AlertState:
        active = self._active.get((alert, function))
        return active.state if active else AlertState.INACTIVE

    # --- background evaluation -------------------------------------------------------

    def start(self) -> None:
        """Call `tick` every `interval_s` on the running event loop until `aclose`."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="wasmlet-alerts")

    async def aclose(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.wait({task})

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            try:
                self.tick()
            except Exception as exc:  # one bad tick must not end alerting for good
                self._log.error("alert evaluation failed", error=repr(exc))

    # --- internals -------------------------------------------------------------------

    def _sample(self) -> _Sample:
        sample = _Sample(self._clock(), read_counts(self._metrics))
        self._samples.append(sample)
        horizon = sample.at - self._window_s
        while len(self._samples) > 2 and self._samples[1].at <= horizon:
            self._samples.popleft()
        return sample

    def _window(self, now: float) -> dict[str, Counts]:
        """Each function's counter increase over the window ending at `now`.

        `_sample` keeps the oldest sample as the newest one at least a window old (or
        the first one taken, while the evaluator is younger than the window).
        """
        base = self._samples[0].counts
        zero = Counts()
        newest = self._samples[-1].counts
        return {name: counts.since(base.get(name, zero)) for name, counts in newest.items()}

    def _evaluate(self, rule: AlertRule, function: str, value: float | None, now: float) -> None:
        key = (rule.name, function)
        active = self._active.get(key)
        if value is None or not value > rule.threshold:
            if active is not None:
                del self._active[key]
                if active.state is AlertState.FIRING:
                    self._transition(rule, function, value, resolved=True)
            return
        if active is None:
            active = self._active[key] = _Active(AlertState.PENDING, now, value)
        active.value = value
        if active.state is AlertState.PENDING and now - active.active_since >= rule.for_s:
            active.state = AlertState.FIRING
            active.firing_since = now
            self._transition(rule, function, value, resolved=False)

    def _transition(
        self, rule: AlertRule, function: str, value: float | None, *, resolved: bool
    ) -> None:
        log = self._log.info if resolved else getattr(self._log, _LOG_LEVEL[rule.severity])
        log(
            "alert resolved" if resolved else "alert firing",
            alert=rule.name,
            severity=str(rule.severity),
            function=function,
            value=None if value is None else round(value, 6),
            state="resolved" if resolved else "firing",
        )


def _iso(at: float | None) -> str | None:
    return None if at is None else datetime.fromtimestamp(at, UTC).isoformat()
