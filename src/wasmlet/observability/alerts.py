"""The alert rules of ``alert_rules.py`` (those of ``deploy/prometheus/alerts.yml``),
evaluated inside the server for users without Prometheus.

`AlertEvaluator.tick` (every `WASMLET_ALERT_INTERVAL_S`, 15 s, from the app's lifespan)
samples this node's counters and keeps the samples of the last window; it reads the
cluster's state from the shared database (`cluster_view.py`) in a thread first. A
counter rule's value is computed from the difference between the newest sample and
the newest one at least a window old (or the first sample, while the server is younger
than the window). The counters live in this process and start at zero, so the
differences are exact where Prometheus' ``rate()`` extrapolates; the decisions are the
same. With no invocation in the window a rate has no value, and no alert fires
(Prometheus: 0/0 is NaN). When the database cannot be read, the cluster rules keep
their states until it can.

Each (alert, subject) is inactive, pending (condition true for less than ``for``) or
firing, like a Prometheus alert. Becoming firing and resolving each log one line
(operation ``alerts``, fields alert, severity, function or node, value, state);
pending alone logs nothing.
"""

from __future__ import annotations

import asyncio
import math
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from wasmlet.observability.alert_rules import (
    ALL_RULES,
    RULES,
    WINDOW_S,
    AlertRule,
    Counts,
    Observed,
    Severity,
    Subject,
)
from wasmlet.observability.cluster_view import ClusterState, ClusterView
from wasmlet.tasks import cancel_and_wait
from wasmlet.telemetry.logs import get_logger
from wasmlet.telemetry.metrics import Metrics

__all__ = ["ALL_RULES", "RULES", "WINDOW_S", "AlertEvaluator", "AlertState", "read_counts"]

INTERVAL_S = 15.0
HISTORY_S = 600.0

Clock = Callable[[], float]


class AlertState(StrEnum):
    INACTIVE = "inactive"
    PENDING = "pending"
    FIRING = "firing"


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
    worker_restarts: float


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


def _sum_of(metrics: Metrics, name: str) -> float:
    return sum(
        sample.value
        for family in metrics.registry.collect()
        for sample in family.samples
        if sample.name == name
    )


def _breaker_states(metrics: Metrics) -> dict[str, float]:
    return {
        sample.labels["name"]: sample.value
        for family in metrics.registry.collect()
        for sample in family.samples
        if sample.name == "functions_circuit_state"
    }


def _is_server_error(status: str) -> bool:
    return len(status) == 3 and status.startswith("5") and status.isdigit()


class AlertEvaluator:
    """Samples the counters on each `tick` and keeps per-(alert, subject) state.

    `clock` returns wall-clock seconds (``time.time`` in the server; tests pass a fake).
    `cluster` reads the shared database before each background tick; `node` is this
    node's id (the subject of its own node alerts). The samples kept are those of the
    last window plus the one just before it, at most ``history_s / interval_s`` of
    them, so memory stays bounded however often `tick` is called (called far more often
    than every `interval_s`, the window shrinks).
    """

    def __init__(
        self,
        metrics: Metrics,
        clock: Clock,
        *,
        rules: Iterable[AlertRule] = ALL_RULES,
        cluster: ClusterView | None = None,
        node: str = "",
        window_s: float = WINDOW_S,
        interval_s: float = INTERVAL_S,
        history_s: float = HISTORY_S,
    ) -> None:
        self._metrics = metrics
        self._clock = clock
        self._rules = tuple(rules)
        self._by_name = {rule.name: rule for rule in self._rules}
        self._cluster = cluster
        self.node = node
        self._window_s = window_s
        self.interval_s = interval_s
        self._samples: deque[_Sample] = deque(maxlen=max(2, math.ceil(history_s / interval_s)))
        self._active: dict[tuple[str, str], _Active] = {}
        self._log = get_logger("alerts")
        self._task: asyncio.Task[None] | None = None
        self._cluster_failing = False
        self._sample()

    def tick(self, cluster: ClusterState | None = None) -> None:
        """Take a sample and evaluate every rule for every subject. `cluster`: the shared
        database's state, None when unknown (the rules reading it keep their states)."""
        now = self._sample().at
        seen = Observed(
            functions=self._window(now),
            worker_restarts=max(
                0.0, self._samples[-1].worker_restarts - self._samples[0].worker_restarts
            ),
            breakers=_breaker_states(self._metrics),
            cluster=cluster,
            node=self.node,
        )
        for rule in self._rules:
            values = rule.value(seen)
            if values is None:
                continue
            self._evaluate_rule(rule, values, now)

    def active(self) -> list[dict[str, Any]]:
        """Pending and firing alerts, most severe first."""
        rules = self._by_name
        ordered = sorted(
            self._active.items(),
            key=lambda item: (_SEVERITY_RANK[rules[item[0][0]].severity], item[0]),
        )
        listed = []
        for (alert, subject), active in ordered:
            rule = rules[alert]
            summary, runbook = rule.describe(subject, active.value)
            listed.append(
                {
                    "alert": alert,
                    "severity": str(rule.severity),
                    **_subject_fields(rule, subject),
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

    def state(self, alert: str, subject: str = "") -> AlertState:
        active = self._active.get((alert, subject))
        return active.state if active else AlertState.INACTIVE

    # --- background evaluation -------------------------------------------------------

    def start(self) -> None:
        """Call `tick` every `interval_s` on the running event loop until `aclose`."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="wasmlet-alerts")

    async def aclose(self) -> None:
        task, self._task = self._task, None
        await cancel_and_wait(task)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            try:
                self.tick(await self._read_cluster())
            except Exception as exc:  # one bad tick must not end alerting for good
                self._log.error("alert evaluation failed", error=repr(exc))

    async def _read_cluster(self) -> ClusterState | None:
        if self._cluster is None:
            return None
        try:
            state = await asyncio.to_thread(self._cluster.read, self._clock())
        except Exception as exc:  # the database is away: keep the cluster alerts as they are
            if not self._cluster_failing:
                self._log.warning(
                    "alert evaluation could not read the cluster's state",
                    error=f"{type(exc).__name__}: {exc}",
                )
            self._cluster_failing = True
            return None
        self._cluster_failing = False
        return state

    # --- internals -------------------------------------------------------------------

    def _sample(self) -> _Sample:
        restarts = _sum_of(self._metrics, "functions_worker_restarts_total")
        sample = _Sample(self._clock(), read_counts(self._metrics), restarts)
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

    def _evaluate_rule(
        self, rule: AlertRule, values: Mapping[str, float | None], now: float
    ) -> None:
        subjects = set(values) | {
            subject for (alert, subject) in self._active if alert == rule.name
        }
        for subject in sorted(subjects):
            self._evaluate(rule, subject, values.get(subject), now)

    def _evaluate(self, rule: AlertRule, subject: str, value: float | None, now: float) -> None:
        key = (rule.name, subject)
        active = self._active.get(key)
        if value is None or not value > rule.threshold:
            if active is not None:
                del self._active[key]
                if active.state is AlertState.FIRING:
                    self._transition(rule, subject, value, resolved=True)
            return
        if active is None:
            active = self._active[key] = _Active(AlertState.PENDING, now, value)
        active.value = value
        if active.state is AlertState.PENDING and now - active.active_since >= rule.for_s:
            active.state = AlertState.FIRING
            active.firing_since = now
            self._transition(rule, subject, value, resolved=False)

    def _transition(
        self, rule: AlertRule, subject: str, value: float | None, *, resolved: bool
    ) -> None:
        log = self._log.info if resolved else getattr(self._log, _LOG_LEVEL[rule.severity])
        log(
            "alert resolved" if resolved else "alert firing",
            alert=rule.name,
            severity=str(rule.severity),
            **_subject_fields(rule, subject),
            value=None if value is None else round(value, 6),
            state="resolved" if resolved else "firing",
        )


def _subject_fields(rule: AlertRule, subject: str) -> dict[str, str | None]:
    """`function` and `node`: the one the alert is about set, the other None."""
    return {
        "function": subject if rule.subject is Subject.FUNCTION else None,
        "node": subject if rule.subject is Subject.NODE else None,
    }


def _iso(at: float | None) -> str | None:
    return None if at is None else datetime.fromtimestamp(at, UTC).isoformat()
