"""The platform alerts in the evaluator (fake clock, real `Metrics`, a given cluster
state), and the cluster state read from a real store on both backends."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator

import pytest
import structlog

from wasmlet.observability.alert_rules import AlertThresholds, platform_rules
from wasmlet.observability.alerts import AlertEvaluator, AlertState
from wasmlet.observability.cluster_view import (
    ClusterState,
    NodeBeat,
    SchedulerBeats,
    StoreClusterView,
)
from wasmlet.store.base import Store
from wasmlet.telemetry.logs import configure_logging
from wasmlet.telemetry.metrics import Metrics
from wasmlet.triggers.queue import DeadReason, JobQueue, NewJob

START = 1_780_000_000.0
STEP_S = 15.0
ME = "node-me"


class FakeClock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def log() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    configure_logging(stream=stream)
    yield stream
    structlog.reset_defaults()


class Harness:
    def __init__(self) -> None:
        self.clock = FakeClock()
        self.metrics = Metrics()
        self.evaluator = AlertEvaluator(
            self.metrics, self.clock, rules=platform_rules(AlertThresholds()), node=ME
        )

    def tick(self, cluster: ClusterState | None = None, seconds: float = STEP_S) -> None:
        self.clock.now += seconds
        self.evaluator.tick(cluster)

    def firing(self) -> list[tuple[str, str | None, str | None, float]]:
        return [(a["alert"], a["function"], a["node"], a["value"]) for a in self.evaluator.firing()]


@pytest.fixture
def h(log: io.StringIO) -> Harness:
    return Harness()


def test_three_worker_restarts_in_five_minutes_fire_for_this_node(h: Harness) -> None:
    restarts = h.metrics.worker_restarts
    restarts.labels("crashed").inc(2)
    h.tick()
    assert h.firing() == []
    restarts.labels("killed").inc()
    h.tick()
    assert h.firing() == [("WorkerRestarts", None, ME, 3)]
    h.tick(seconds=300)
    assert h.firing() == []


def test_cluster_rules_fire_on_the_database_state(h: Harness) -> None:
    cluster = ClusterState(
        oldest_job_age_s=301,
        new_dead_letters={"broken": 2},
        scheduler_heartbeat_age_s=61,
        nodes=(NodeBeat(ME, 500), NodeBeat("other", 61), NodeBeat("alive", 1)),
    )
    h.tick(cluster)
    assert sorted(h.firing()) == [
        ("DeadLettersGrowing", "broken", None, 2),
        ("NodeSilent", None, "other", 61),
        ("QueueOldestJobAgeHigh", None, None, 301),
        ("SchedulerHeartbeatStale", None, None, 61),
    ]  # this node is never silent to itself


def test_thresholds_are_strict_and_a_healthy_cluster_fires_nothing(h: Harness) -> None:
    h.tick(ClusterState(300, {}, 60, (NodeBeat("other", 60),)))
    h.tick(ClusterState(0, {}, None, ()))  # no scheduler ever beat: no value
    assert h.firing() == []


def test_an_unreadable_database_keeps_the_cluster_alerts_as_they_were(h: Harness) -> None:
    h.tick(ClusterState(0, {}, 90, (NodeBeat("other", 90),)))
    assert len(h.firing()) == 2
    h.tick(None)
    assert h.evaluator.state("SchedulerHeartbeatStale") is AlertState.FIRING
    assert h.evaluator.state("NodeSilent", "other") is AlertState.FIRING
    h.tick(ClusterState(0, {}, 1, ()))  # beats again; the node was forgotten
    assert h.firing() == []


def test_a_breaker_not_closed_fires_from_the_state_gauge(h: Harness, log: io.StringIO) -> None:
    h.metrics.breaker_state.labels("flaky").set(2)
    h.metrics.breaker_state.labels("fine").set(0)
    h.tick()
    assert h.firing() == [("CircuitBreakerOpen", "flaky", None, 2)]
    h.metrics.breaker_state.labels("flaky").set(1)
    h.tick()
    assert h.firing() == [("CircuitBreakerOpen", "flaky", None, 1)]
    h.metrics.breaker_state.labels("flaky").set(0)
    h.tick()
    assert h.firing() == []
    lines = [json.loads(line) for line in log.getvalue().splitlines()]
    assert [(line["message"], line["function"], line["node"]) for line in lines] == [
        ("alert firing", "flaky", None),
        ("alert resolved", "flaky", None),
    ]
    assert lines[0]["level"] == "WARNING"


def test_the_api_lists_the_subject_and_a_runbook(h: Harness) -> None:
    h.tick(ClusterState(0, {}, 0, (NodeBeat("b1", 75),)))
    [alert] = h.evaluator.firing()
    assert alert["summary"] == "Node b1 silent for 75s"
    assert alert["severity"] == "critical"
    assert "load balancer" in alert["runbook"]


def test_the_cluster_state_is_read_from_the_store(store: Store) -> None:
    store.migrate()
    now = START
    queue = JobQueue(store, node="n1", clock=lambda: now)
    jobs = [NewJob(f"j{i}", "broken", "http", b"{}", run_at=now - 40 + i) for i in range(3)]
    queue.enqueue(jobs)
    claimed = queue.claim(2)  # the two oldest; the third still waits
    for job in claimed:
        queue.bury(
            job.id, reason=DeadReason.NON_RETRIABLE, error_type="function_error", error="x",
            version=1,
        )  # fmt: skip
    store.execute("heartbeat", node="n1", now=now - 5, restarts=0)
    store.execute("heartbeat", node="n2", now=now - 90, restarts=0)
    store.execute("heartbeat", node="gone", now=now - 3600, restarts=0)
    state = StoreClusterView(store, SchedulerBeats(store), window_s=300).read(now)
    assert state.oldest_job_age_s == pytest.approx(38)
    assert state.new_dead_letters == {"broken": 2}
    assert state.scheduler_heartbeat_age_s == pytest.approx(5)
    assert sorted((b.id, b.age_s) for b in state.nodes) == [("n1", 5), ("n2", 90)]
    later = StoreClusterView(store, SchedulerBeats(store), window_s=300).read(now + 301)
    assert later.new_dead_letters == {}
    store.execute("forget_heartbeat", node="n2")
    assert [b.id for b in SchedulerBeats(store).beats(now)] == ["n1"]
