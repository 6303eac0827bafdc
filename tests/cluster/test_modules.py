"""Any node serves any function: a deploy, a redeploy and a delete on one node reach the
others, and a database cut does not stop functions a node already knows.

Real nodes on one PostgreSQL database (tests/support/cluster.py). Deadlines here are
bounds against a hang; how fast a deploy propagates is measured in bench/bench_cluster.py.
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import httpx
import psycopg
import pytest

from tests.support.cluster import cluster
from tests.support.server import ServerProcess
from tests.support.wasmgen import says

pytestmark = pytest.mark.postgres

PROPAGATION_BOUND_S = 15.0  # the promise is 1 s; this only stops a hang
CUT_S = 15.0


def wait_for_answer(node: ServerProcess, name: str, status: int, body: str | None) -> Counter[int]:
    """Invoke `name` on `node` until it answers `status` (and `body`); every answer before
    that must be the previous state's, never a 5xx. The statuses seen, counted."""
    seen: Counter[int] = Counter()
    deadline = time.monotonic() + PROPAGATION_BOUND_S
    while True:
        response = node.invoke(name)
        seen[response.status_code] += 1
        assert response.status_code < 500, response.text
        if response.status_code == status and (body is None or response.text == body):
            return seen
        assert time.monotonic() < deadline, f"{node.url} still answers {response.text!r}"


def test_deploy_redeploy_and_delete_reach_every_node(tmp_path: Path) -> None:
    with cluster(tmp_path, 3, staggered=True) as nodes:
        a, others = nodes[0], nodes.nodes[1:]
        name = "greet"
        for version in range(1, 4):
            text = f"version {version}"
            deployed = a.deploy(name, says(text), config={"public": True})
            assert deployed.status_code == (201 if version == 1 else 200), deployed.text
            for node in others:
                wait_for_answer(node, name, 200, text)
        deleted = httpx.delete(
            f"{a.url}/functions/v1/functions/{name}", headers=a.service_headers(), timeout=30
        )
        assert deleted.status_code == 204, deleted.text
        for node in others:
            wait_for_answer(node, name, 404, None)


def test_a_stored_module_that_does_not_compile_is_503_not_a_crash(
    tmp_path: Path,
) -> None:
    with cluster(tmp_path, 2, staggered=True) as nodes:
        a, b = nodes[0], nodes[1]
        b.stop()  # so that it cannot compile the module before it is spoiled
        assert a.deploy("kept", says("kept")).status_code == 201
        with psycopg.connect(nodes.pg.url, autocommit=True) as conn:
            conn.execute("UPDATE wasmlet.modules SET wasm = %s", (b"\0asm\x01\0\0\0\xff",))
        b.start()
        response = b.invoke("kept")
        assert response.status_code == 503, response.text
        error = response.json()["error"]
        assert error["type"] == "module_unavailable"
        assert error["retriable"] is True
        assert response.headers["retry-after"] == "1"
        assert a.invoke("kept").text == "kept"  # the node that compiled it still has it


def test_known_functions_answer_through_a_database_cut(tmp_path: Path) -> None:
    with cluster(tmp_path, 3, through_proxy=True, staggered=True) as nodes:
        assert nodes.proxy is not None
        name = "steady"
        assert nodes[0].deploy(name, says("steady")).status_code == 201
        for node in nodes.nodes:
            wait_for_answer(node, name, 200, "steady")
        nodes.proxy.cut()
        seen: Counter[int] = Counter()
        try:
            ends = time.monotonic() + CUT_S
            while time.monotonic() < ends:
                for node in nodes.nodes:
                    response = node.invoke(name, timeout_s=30)
                    seen[response.status_code] += 1
                    assert response.status_code == 200, (seen, response.text)
                    assert response.text == "steady"
                time.sleep(0.05)
        finally:
            nodes.proxy.restore()
        assert seen[200] >= 3
        redeployed = nodes[1].deploy(name, says("after the cut"))
        assert redeployed.status_code == 200, redeployed.text
        for node in nodes.nodes:
            wait_for_answer(node, name, 200, "after the cut")
