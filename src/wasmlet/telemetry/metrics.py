"""Prometheus metrics, kept in a registry the app owns (no module-level collectors).

All counting happens in the server process: worker processes only run WebAssembly and
report outcomes back, so the figures are exact whatever the number of workers.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

DURATION_BUCKETS = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60,
)  # fmt: skip


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.invocations = Counter(
            "functions_invocations",
            "Invocations by final HTTP status",
            ["name", "status"],
            registry=r,
        )
        self.errors = Counter(
            "functions_errors", "Failed invocations by error type", ["name", "error_type"],
            registry=r,
        )  # fmt: skip
        self.refused = Counter(
            "functions_refused",
            "Invocations refused before any function was known (401, 404)",
            ["error_type"],
            registry=r,
        )
        self.timeouts = Counter(
            "functions_timeout", "Invocations ended by the timeout", ["name"], registry=r
        )
        self.memory_exceeded = Counter(
            "functions_memory_exceeded",
            "Invocations that hit the memory limit",
            ["name"],
            registry=r,
        )
        self.duration = Histogram(
            "functions_duration_seconds",
            "Invocation duration, admission to result",
            ["name"],
            buckets=DURATION_BUCKETS,
            registry=r,
        )
        self.delivery_latency = Histogram(
            "functions_delivery_latency_seconds",
            "From a change's commit (or a job's creation) to its function's start",
            ["trigger"],
            buckets=DURATION_BUCKETS,
            registry=r,
        )
        self.breaker_state = Gauge(
            "functions_circuit_state",
            "Circuit breaker state per function: 0 closed, 1 half-open, 2 open",
            ["name"],
            registry=r,
        )
        self.breaker_transitions = Counter(
            "functions_circuit_transitions",
            "Circuit breaker state changes, by the state entered",
            ["name", "state"],
            registry=r,
        )
        self.retries = Counter(
            "functions_retries", "Asynchronous attempts scheduled again", ["name", "error_type"],
            registry=r,
        )  # fmt: skip
        self.dead_letters = Counter(
            "functions_dead_letters",
            "Invocations moved to the dead letter queue",
            ["name", "reason"],
            registry=r,
        )
        self.schedule_missed = Counter(
            "functions_schedule_missed_runs",
            "Scheduled runs missed while no scheduler ran, by catch-up policy",
            ["name", "catch_up"],
            registry=r,
        )
        self.scheduler_restarts = Counter(
            "functions_scheduler_restarts", "Scheduler ticks that failed and were retried",
            registry=r,
        )  # fmt: skip
        self.scheduler_heartbeat = Gauge(
            "functions_scheduler_heartbeat_timestamp_seconds",
            "When this node's scheduler last completed a tick",
            registry=r,
        )
        self.in_flight = Gauge(
            "functions_in_flight", "Invocations admitted and running", registry=r
        )
        self.workers_alive = Gauge("functions_workers_alive", "Live worker processes", registry=r)
        self.worker_restarts = Counter(
            "functions_worker_restarts", "Worker processes replaced", ["reason"], registry=r
        )
        for reason in ("crashed", "killed"):  # at 0 from the start: increase() sees the first
            self.worker_restarts.labels(reason)
        self.history_dropped = Counter(
            "functions_history_dropped",
            "Invocation records not written to the history (queue full or store refused them)",
            registry=r,
        )
        self.http_requests = Counter(
            "functions_http_requests",
            "Outbound HTTP requests by function, allow-list entry ('-': none) and outcome "
            "(ok or the error type the guest saw)",
            ["name", "host", "outcome"],
            registry=r,
        )
        self.http_duration = Histogram(
            "functions_http_request_duration_seconds",
            "Outbound HTTP requests, from the host call to the response body read",
            ["name"],
            buckets=DURATION_BUCKETS,
            registry=r,
        )
        self.http_in_flight = Gauge(
            "functions_http_in_flight", "Outbound HTTP requests in flight", registry=r
        )
        self.deploys = Counter(
            "functions_deploys", "Deploy attempts by outcome", ["outcome"], registry=r
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)
