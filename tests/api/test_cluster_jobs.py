"""Several real nodes on one PostgreSQL database: start-up, the queue through a database
outage, a node killed mid-run, and a node that cannot run a function."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.support.cluster import cluster

pytestmark = pytest.mark.postgres


def test_three_nodes_started_together_on_an_empty_database_all_become_healthy(
    tmp_path: Path,
) -> None:
    """Three rounds: the race on the catalogs does not show every time."""
    for round_ in range(3):
        with cluster(tmp_path / f"round{round_}", 3) as c:  # raises if a node exits
            for node in c.nodes:
                assert httpx.get(node.url + "/health", timeout=10).status_code == 200
                assert node.process is not None and node.process.poll() is None
