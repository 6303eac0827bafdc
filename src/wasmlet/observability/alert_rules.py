"""The alert rules the server evaluates: those of ``deploy/prometheus/alerts.yml``.

Function alerts (the spec's three), per function, from this node's counters over the
last 5 minutes:

=========================  ========  ===========================================  =====
alert                      severity  value (per function, last 5 minutes)         for
=========================  ========  ===========================================  =====
FunctionErrorRateHigh      critical  5xx invocations / invocations > 0.10         5m
FunctionTimeoutRateHigh    warning   timeouts / invocations > 0.05                0
FunctionMemoryLimitHit     info      memory-limit hits > 0                        0
=========================  ========  ===========================================  =====

Platform alerts (the spec's "alert ops team" for wasmlet itself). All but
`WorkerRestarts` are read from the shared database (`cluster_view.py`), so every node
sees the whole cluster; the thresholds marked * are settings (`AlertThresholds`):

========================  ========  ==========================================  =======
alert                     severity  value                                       subject
========================  ========  ==========================================  =======
WorkerRestarts            warning   workers replaced, last 5 minutes > 2.5      node
SchedulerHeartbeatStale   critical  newest heartbeat of any scheduler, s > 60*  cluster
QueueOldestJobAgeHigh     warning   wait of the oldest due queued job, s > 300* cluster
DeadLettersGrowing        warning   jobs buried, last 5 minutes > 0             function
CircuitBreakerOpen        warning   breaker state (1 half-open, 2 open) > 0     function
NodeSilent                critical  age of a node's last heartbeat, s > 60*     node
========================  ========  ==========================================  =======

`WorkerRestarts` counts this node's workers only (a node's own processes); its
threshold of 2.5 means three or more, and leaves Prometheus' ``increase()``
extrapolation room. `CircuitBreakerOpen` reads the breaker states this node holds.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from wasmlet.observability.cluster_view import ClusterState

WINDOW_S = 300.0


class Severity(StrEnum):
    CRITICAL = "critical"
    WARNING = "warning"
    INFO = "info"


class Subject(StrEnum):
    """What one alert instance is about: its label in Prometheus, its field in the API."""

    FUNCTION = "function"
    NODE = "node"
    CLUSTER = "cluster"


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


@dataclass(frozen=True, slots=True)
class Observed:
    """Everything one evaluation looks at."""

    functions: Mapping[str, Counts] = field(default_factory=dict)  # increase over the window
    worker_restarts: float = 0.0  # this node's, over the window
    breakers: Mapping[str, float] = field(default_factory=dict)  # 0 closed, 1 half-open, 2 open
    cluster: ClusterState | None = None  # None: the shared database could not be read
    node: str = ""  # this node's id


# A rule's values by subject ("" for the cluster); None: nothing known this time, every
# alert of the rule keeps its state. A subject's value None: no value (resolves).
Values = Mapping[str, float | None] | None


@dataclass(frozen=True, slots=True)
class AlertRule:
    """Fires for a subject while ``value > threshold`` has held for ``for_s``."""

    name: str
    severity: Severity
    threshold: float
    for_s: float
    value: Callable[[Observed], Values]
    summary: str  # str.format fields: subject, value, percent, count, seconds
    runbook: str  # the same fields
    subject: Subject = Subject.FUNCTION
    window_s: float | None = WINDOW_S  # the range the value covers; None: a current state

    def describe(self, subject: str, value: float) -> tuple[str, str]:
        fields = {
            "subject": subject or "cluster",
            "function": subject,
            "value": value,
            "percent": f"{value * 100:.4g}%",
            "count": f"{value:.0f}",
            "seconds": f"{value:.0f}",
        }
        return self.summary.format(**fields), self.runbook.format(**fields)


def error_rate(window: Counts) -> float | None:
    return window.server_errors / window.invocations if window.invocations else None


def timeout_rate(window: Counts) -> float | None:
    return window.timeouts / window.invocations if window.invocations else None


def memory_hits(window: Counts) -> float | None:
    return window.memory_exceeded


def _per_function(rate: Callable[[Counts], float | None]) -> Callable[[Observed], Values]:
    return lambda seen: {name: rate(counts) for name, counts in seen.functions.items()}


RULES: tuple[AlertRule, ...] = (
    AlertRule(
        "FunctionErrorRateHigh", Severity.CRITICAL, 0.10, 300.0, _per_function(error_rate),
        "Function {function}: {percent} of invocations fail",
        "Check the function's logs (GET /functions/v1/functions/{function}/logs) and "
        "functions_errors_total for the error type; fix the function code (500), "
        "optimize it or raise its timeout (504) or memory limit (507).",
    ),
    AlertRule(
        "FunctionTimeoutRateHigh", Severity.WARNING, 0.05, 0.0, _per_function(timeout_rate),
        "Function {function}: {percent} of invocations time out",
        "Optimize the function or increase its timeout "
        "(PATCH /functions/v1/functions/{function} timeout_ms).",
    ),
    AlertRule(
        "FunctionMemoryLimitHit", Severity.INFO, 0.0, 0.0, _per_function(memory_hits),
        "Function {function} hit its memory limit",
        "Optimize the function's memory usage or increase its limit "
        "(PATCH /functions/v1/functions/{function} memory_mb).",
    ),
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class AlertThresholds:
    """The platform thresholds an operator may change (WASMLET_ALERT_* settings)."""

    scheduler_stale_s: float = 60.0
    queue_age_s: float = 300.0
    node_silent_s: float = 60.0


def _scheduler_age(seen: Observed) -> Values:
    return None if seen.cluster is None else {"": seen.cluster.scheduler_heartbeat_age_s}


def _queue_age(seen: Observed) -> Values:
    return None if seen.cluster is None else {"": seen.cluster.oldest_job_age_s}


def _new_dead_letters(seen: Observed) -> Values:
    return None if seen.cluster is None else dict(seen.cluster.new_dead_letters)


def _silent_nodes(seen: Observed) -> Values:
    if seen.cluster is None:
        return None
    return {beat.id: beat.age_s for beat in seen.cluster.nodes if beat.id != seen.node}


def platform_rules(limits: AlertThresholds = AlertThresholds()) -> tuple[AlertRule, ...]:
    return (
        AlertRule(
            "WorkerRestarts", Severity.WARNING, 2.5, 0.0,
            lambda seen: {seen.node: seen.worker_restarts},
            "Node {subject}: {count} worker processes replaced in 5 minutes",
            "Read the node's log for `worker crashed` / `worker killed` lines (pid, "
            "error): a crash is a wasmtime or host-call bug, an out-of-memory kill "
            "(dmesg) or an outside kill; `killed` is a worker stuck past its timeout "
            "and grace. Check free memory and the function invoked at the time.",
            subject=Subject.NODE,
        ),
        AlertRule(
            "SchedulerHeartbeatStale", Severity.CRITICAL, limits.scheduler_stale_s, 0.0,
            _scheduler_age,
            "No scheduler has completed a tick for {seconds}s",
            "Scheduled functions are not running. Check that a node is up and reaches "
            "the database (GET /health: scheduler.healthy, heartbeat_age_s) and its log "
            "for `scheduler tick failed`; restart the node if the scheduler is stuck. "
            "Missed runs are caught up per schedule (catch_up) once it beats again.",
            subject=Subject.CLUSTER, window_s=None,
        ),
        AlertRule(
            "QueueOldestJobAgeHigh", Severity.WARNING, limits.queue_age_s, 0.0, _queue_age,
            "The oldest due job has waited {seconds}s to start",
            "Asynchronous work (database triggers, schedules, async invokes) is "
            "falling behind: check that nodes are up (GET /functions/v1/nodes), "
            "functions_queue_depth and functions_in_flight; add nodes or workers, or "
            "raise WASMLET_DISPATCH_CONCURRENCY; look for a slow function holding "
            "the dispatchers.",
            subject=Subject.CLUSTER, window_s=None,
        ),
        AlertRule(
            "DeadLettersGrowing", Severity.WARNING, 0.0, 0.0, _new_dead_letters,
            "Function {function}: {count} job(s) moved to the dead letter queue in 5 minutes",
            "Inspect them (GET /functions/v1/dlq?function={function}): last_error_type "
            "and last_error say why; fix the function or what it depends on, then "
            "retry them (POST /functions/v1/dlq/{{id}}/retry) or purge them.",
        ),
        AlertRule(
            "CircuitBreakerOpen", Severity.WARNING, 0.0, 0.0,
            lambda seen: dict(seen.breakers),
            "Function {function}: circuit breaker not closed (state {count}: 1 half-open, "
            "2 open)",
            "Calls fail fast with 503 circuit_open. Read the function's logs and "
            "invocations for the failures that opened it (GET "
            "/functions/v1/functions/{function}); once the cause is fixed the next "
            "probe call closes it.",
            window_s=None,
        ),
        AlertRule(
            "NodeSilent", Severity.CRITICAL, limits.node_silent_s, 0.0, _silent_nodes,
            "Node {subject} silent for {seconds}s",
            "The node stopped writing its heartbeat: it died, lost the database, or its "
            "scheduler stalled. Its leased jobs return to the queue when their leases "
            "expire. Check the process and its log; restart it, or remove it from the "
            "load balancer for good.",
            subject=Subject.NODE, window_s=None,
        ),
    )  # fmt: skip


ALL_RULES: tuple[AlertRule, ...] = RULES + platform_rules()
