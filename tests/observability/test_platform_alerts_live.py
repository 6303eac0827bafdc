"""The platform alerts fire in a real `wasmlet serve` when their condition is produced
for real: workers killed, the scheduler stopped, a job buried, a breaker opened, a job
kept waiting, a node killed. Small thresholds and a 0.2 s evaluation interval come from
the WASMLET_ALERT_* settings, so nothing waits minutes."""

from __future__ import annotations

import functools
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import ServerFactory
from tests.support.build import wat
from tests.support.cluster import cluster
from tests.support.server import ServerProcess

ALERTS = "/functions/v1/alerts"
FAST = {"WASMLET_ALERT_INTERVAL_S": "0.2"}
DEADLINE_S = 60.0


def alerts(server: ServerProcess) -> list[dict[str, Any]]:
    response = httpx.get(server.url + ALERTS, headers=server.service_headers(), timeout=30)
    assert response.status_code == 200, response.text
    listed: list[dict[str, Any]] = response.json()["alerts"]
    return listed


def wait_until(condition: Callable[[], bool], what: str, timeout_s: float = DEADLINE_S) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def wait_for_alert(server: ServerProcess, alert: str, **fields: Any) -> dict[str, Any]:
    found: list[dict[str, Any]] = []

    def firing() -> bool:
        found[:] = [
            a
            for a in alerts(server)
            if a["alert"] == alert and all(a[k] == v for k, v in fields.items())
        ]
        return bool(found)

    wait_until(firing, f"{alert} {fields} on {server.url}")
    return found[0]


def names(server: ServerProcess) -> set[str]:
    return {a["alert"] for a in alerts(server)}


def invoke_async(server: ServerProcess, name: str, payload: bytes = b"") -> None:
    response = server.invoke(name, payload, headers={"prefer": "respond-async"})
    assert response.status_code == 202, response.text


def worker_pids(server: ServerProcess) -> list[int]:
    """Live worker pids, from the server's `worker started/restarted/...` log lines."""
    alive: list[int] = []
    for line in server.json_logs():
        if line.get("operation") != "worker":
            continue
        if line["message"] in ("worker started", "worker restarted"):
            alive.append(line["pid"])
        elif line["pid"] in alive:
            alive.remove(line["pid"])
    return alive


def restarted(server: ServerProcess, count: int) -> bool:
    lines = server.json_logs()
    found: int = sum(line.get("message") == "worker restarted" for line in lines)
    return found == count


@pytest.mark.slow
def test_workers_killed_three_times_fire_worker_restarts(start_server: ServerFactory) -> None:
    with start_server(**FAST) as server:
        wait_until(lambda: len(worker_pids(server)) == 2, "two workers")
        for kills in range(1, 4):
            os.kill(worker_pids(server)[0], signal.SIGKILL)
            wait_until(functools.partial(restarted, server, kills), f"{kills} workers restarted")
            if kills == 2:
                time.sleep(1)  # five evaluations: two restarts do not fire
                assert "WorkerRestarts" not in names(server)
        alert = wait_for_alert(server, "WorkerRestarts", value=3)
        assert alert["severity"] == "warning"
        assert alert["node"] and alert["function"] is None
        line = server.wait_for_log(operation="alerts", alert="WorkerRestarts")
        assert (line["message"], line["level"]) == ("alert firing", "WARNING")
        assert server.invoke("anything-missing").status_code == 404  # still serving


@pytest.mark.slow
def test_a_stopped_scheduler_fires_the_stale_heartbeat_alert(
    start_server: ServerFactory,
) -> None:
    env = {**FAST, "WASMLET_TEST_FAULTS": "1", "WASMLET_ALERT_SCHEDULER_STALE_S": "2"}
    with start_server(**env) as server:
        time.sleep(1)  # ticks of 1 s keep the heartbeat young: nothing fires
        assert "SchedulerHeartbeatStale" not in names(server)
        stopped = httpx.post(server.url + "/_test/faults/scheduler/stop", timeout=30)
        assert stopped.status_code == 200
        alert = wait_for_alert(server, "SchedulerHeartbeatStale")
        assert alert["severity"] == "critical"
        assert alert["value"] > 2
        assert alert["function"] is None and alert["node"] is None
        health = server.url + "/health"
        wait_until(lambda: httpx.get(health).status_code == 503, "/health to say so too")


@pytest.mark.slow
def test_a_function_failing_async_fires_dead_letter_growth_and_its_breaker_opens(
    start_server: ServerFactory, fname: str
) -> None:
    env = {**FAST, "WASMLET_BREAKER_MIN_CALLS": "3", "WASMLET_BREAKER_COOLDOWN_S": "300"}
    with start_server(**env) as server:
        config = {"retry": {"max_retries": 0}}
        assert server.deploy(fname, wat("error_exit"), config).status_code == 201
        invoke_async(server, fname)
        alert = wait_for_alert(server, "DeadLettersGrowing", function=fname)
        assert (alert["severity"], alert["value"]) == ("warning", 1)
        assert "CircuitBreakerOpen" not in names(server)
        # The async failure and two calls make the three the breaker needs; then it
        # fails fast.
        assert [server.invoke(fname).status_code for _ in range(3)] == [500, 500, 503]
        alert = wait_for_alert(server, "CircuitBreakerOpen", function=fname)
        assert (alert["severity"], alert["value"]) == ("warning", 2)


@pytest.mark.slow
def test_a_job_kept_waiting_fires_the_oldest_job_age_alert_until_it_starts(
    start_server: ServerFactory, fname: str
) -> None:
    env = {**FAST, "WASMLET_DISPATCH_CONCURRENCY": "1", "WASMLET_ALERT_QUEUE_AGE_S": "1"}
    with start_server(**env) as server:
        assert server.deploy(fname, wat("sleep")).status_code == 201
        invoke_async(server, fname, b"4000")  # holds the only dispatch slot for 4 s
        time.sleep(0.2)
        invoke_async(server, fname, b"0")  # waits behind it
        alert = wait_for_alert(server, "QueueOldestJobAgeHigh")
        assert alert["severity"] == "warning" and alert["value"] > 1
        wait_until(lambda: "QueueOldestJobAgeHigh" not in names(server), "the job to start")


@pytest.mark.slow
@pytest.mark.postgres
def test_a_node_killed_is_silent_to_the_others_and_one_stopped_cleanly_is_not(
    tmp_path: Path, fname: str
) -> None:
    with cluster(
        tmp_path, 2, staggered=True, WASMLET_ALERT_INTERVAL_S="0.2",
        WASMLET_ALERT_NODE_SILENT_S="2",
    ) as nodes:  # fmt: skip
        a, b = nodes[0], nodes[1]
        b.stop()  # cleanly: gone on purpose
        time.sleep(4)  # twice the threshold
        assert "NodeSilent" not in names(a)
        b.start()
        assert b.process is not None
        b.process.send_signal(signal.SIGKILL)
        b.process.wait()
        alert = wait_for_alert(a, "NodeSilent")
        assert alert["severity"] == "critical" and alert["value"] > 2
        assert alert["node"] and alert["node"] in alert["summary"]
        assert [x["alert"] for x in alerts(a)] == ["NodeSilent"]


@pytest.mark.slow
@pytest.mark.postgres
def test_dead_letters_buried_on_one_node_alert_on_every_node(tmp_path: Path, fname: str) -> None:
    with cluster(tmp_path, 2, staggered=True, WASMLET_ALERT_INTERVAL_S="0.2") as nodes:
        a, b = nodes[0], nodes[1]
        assert a.deploy(fname, wat("error_exit"), {"retry": {"max_retries": 0}}).status_code == 201
        invoke_async(a, fname)
        for node in (a, b):
            alert = wait_for_alert(node, "DeadLettersGrowing", function=fname)
            assert alert["value"] == 1
