"""GET /functions/v1/alerts through a real `wasmlet serve`.

Each test starts its own server: the session server's earlier tests (memory hogs,
failing functions) may have alerts firing there. The thresholds and durations are
tested with synthetic time in test_alerts.py; here the route, its key, and the
evaluation the server runs every 15 s.
"""

from __future__ import annotations

import time

import httpx
import pytest

from tests.conftest import ServerFactory
from tests.support.build import wat

ALERTS = "/functions/v1/alerts"


def test_alerts_route_lists_nothing_on_a_quiet_server_and_needs_the_service_key(
    start_server: ServerFactory,
) -> None:
    with start_server() as server:
        response = httpx.get(server.url + ALERTS, headers=server.service_headers())
        assert response.status_code == 200
        assert response.json() == {"alerts": []}
        assert httpx.get(server.url + ALERTS, headers={"apikey": server.service_key}).json() == {
            "alerts": []
        }
        for headers in ({}, server.anon_headers(), {"authorization": "Bearer nope"}):
            refused = httpx.get(server.url + ALERTS, headers=headers)
            assert refused.status_code == 401
            assert refused.json()["error"]["type"] == "unauthorized"
        schema = httpx.get(server.url + "/openapi.json", timeout=60).json()
        assert "get" in schema["paths"][ALERTS]


@pytest.mark.slow
def test_a_memory_limit_hit_is_listed_and_logged_by_the_next_evaluation(
    start_server: ServerFactory, fname: str
) -> None:
    with start_server() as server:
        assert server.deploy(fname, wat("memory_hog")).status_code == 201
        assert server.invoke(fname).status_code == 507
        deadline = time.monotonic() + 90  # the first evaluation runs 15 s after startup
        firing: list[dict[str, object]] = []
        while not firing and time.monotonic() < deadline:
            time.sleep(0.25)
            response = httpx.get(server.url + ALERTS, headers=server.service_headers())
            firing = response.json()["alerts"]
        assert [(a["alert"], a["severity"], a["function"], a["value"]) for a in firing] == [
            ("FunctionMemoryLimitHit", "info", fname, 1)
        ]
        line = server.wait_for_log(operation="alerts", function=fname)
        assert line["message"] == "alert firing"
        assert (line["alert"], line["severity"], line["value"]) == (
            "FunctionMemoryLimitHit", "info", 1,
        )  # fmt: skip
        assert line["level"] == "INFO"
        assert line["service"] == "functions"
