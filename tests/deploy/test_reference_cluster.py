"""The reference deployment of deploy/cluster/: a real HAProxy (config rendered from the
shipped template by the shipped script) in front of two real nodes on one PostgreSQL.

HAProxy comes from the Debian package `haproxy` (`scripts/ensure-test-tools` installs
it). A missing haproxy fails these tests rather than skipping them.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.build import wat
from tests.support.cluster import Cluster, cluster
from tests.support.haproxy import RENDER, Haproxy, haproxy_binary
from tests.support.server import ServerProcess

DEADLINE_S = 60.0


@pytest.fixture(scope="module")
def haproxy() -> str:
    path = haproxy_binary()
    assert path is not None, (
        "haproxy is not installed: run scripts/ensure-test-tools (apt-get install haproxy)"
    )
    return path


@pytest.fixture
def two_nodes(tmp_path: Path) -> Iterator[Cluster]:
    with cluster(tmp_path, 2, staggered=True, WASMLET_TEST_FAULTS="1") as nodes:
        yield nodes


@pytest.fixture
def balancer(haproxy: str, two_nodes: Cluster, tmp_path: Path) -> Iterator[Haproxy]:
    lb = Haproxy(haproxy, tmp_path, [f"127.0.0.1:{node.port}" for node in two_nodes.nodes])
    lb.start()
    try:
        yield lb
    finally:
        lb.stop()


def served(node: ServerProcess, name: str) -> float:
    return node.metric("functions_invocations_total", name=name, status="200")


def invoke(lb: Haproxy, node: ServerProcess, name: str) -> httpx.Response:
    return httpx.post(
        f"{lb.url}/functions/v1/invoke/{name}",
        content=b"hello",
        headers=node.anon_headers(),
        timeout=30,
    )


@pytest.mark.slow
@pytest.mark.postgres
def test_requests_reach_both_nodes_and_a_killed_node_is_routed_around(
    two_nodes: Cluster, balancer: Haproxy, fname: str
) -> None:
    a, b = two_nodes.nodes
    assert a.deploy(fname, wat("echo")).status_code == 201  # b fetches it on its first call
    assert httpx.get(balancer.url + "/health", timeout=10).status_code == 200

    for _ in range(20):
        response = invoke(balancer, a, fname)
        assert (response.status_code, response.content) == (200, b"hello")
    assert served(a, fname) > 0 and served(b, fname) > 0
    assert served(a, fname) + served(b, fname) == 20

    before = served(b, fname)
    assert a.process is not None
    a.process.kill()
    a.process.wait()
    statuses: list[int] = []  # every call, while HAProxy finds out and after
    deadline = time.monotonic() + DEADLINE_S
    while balancer.states().get("node1") != "DOWN":
        assert time.monotonic() < deadline, balancer.states()
        statuses.append(invoke(balancer, b, fname).status_code)
    for _ in range(10):
        statuses.append(invoke(balancer, b, fname).status_code)
    assert set(statuses) == {200}
    assert served(b, fname) - before == len(statuses)
    assert balancer.states() == {"node1": "DOWN", "node2": "UP"}
    assert httpx.get(balancer.url + "/health", timeout=10).status_code == 200


@pytest.mark.slow
@pytest.mark.postgres
def test_a_node_answering_503_on_health_is_taken_out_while_it_runs(
    two_nodes: Cluster, balancer: Haproxy, fname: str
) -> None:
    a, b = two_nodes.nodes
    stopped = httpx.post(a.url + "/_test/faults/scheduler/stop", timeout=30)
    assert stopped.status_code == 200  # /health turns 503 two ticks later
    deadline = time.monotonic() + DEADLINE_S
    while balancer.states().get("node1") != "DOWN":
        assert time.monotonic() < deadline, balancer.states()
        time.sleep(0.05)
    assert httpx.get(a.url + "/health", timeout=10).status_code == 503
    assert b.deploy(fname, wat("echo")).status_code == 201
    for _ in range(10):
        assert invoke(balancer, b, fname).status_code == 200
    assert served(b, fname) == 10 and served(a, fname) == 0


def test_the_renderer_refuses_values_that_would_inject_directives(tmp_path: Path) -> None:
    for bad in ("127.0.0.1:8787\n    stats enable", "a b:1", "host:0", "host:99999", ""):
        result = subprocess.run(
            [sys.executable, str(RENDER), bad],
            capture_output=True, text=True, timeout=30, check=False,
        )  # fmt: skip
        assert result.returncode == 2, bad
        assert result.stdout == ""
