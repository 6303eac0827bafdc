"""A rollback on one node is served by the others: it goes through the deploy path, whose
change announcement every node hears (PostgreSQL, tests/support/cluster.py)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.cluster.test_modules import wait_for_answer
from tests.support.cluster import cluster
from tests.support.wasmgen import says

pytestmark = pytest.mark.postgres


def test_rollback_on_one_node_is_served_by_another(tmp_path: Path) -> None:
    with cluster(tmp_path, 2, staggered=True) as nodes:
        a, b = nodes[0], nodes[1]
        name = "greet"
        for version in (1, 2):
            deployed = a.deploy(name, says(f"version {version}"), config={"public": True})
            assert deployed.status_code in (200, 201), deployed.text
            wait_for_answer(b, name, 200, f"version {version}")
        back = httpx.post(
            f"{a.url}/functions/v1/functions/{name}/rollback",
            json={"version": 1},
            headers=a.service_headers(),
            timeout=60,
        )
        assert back.status_code == 200, back.text
        assert back.json()["version"] == 3
        wait_for_answer(b, name, 200, "version 1")
        listed = httpx.get(
            f"{b.url}/functions/v1/functions/{name}/versions", headers=b.service_headers()
        )
        assert listed.status_code == 200, listed.text
        assert [v["version"] for v in listed.json()["versions"]] == [3, 2, 1]
        assert listed.json()["versions"][0]["rolled_back_from"] == 1
