"""Health, metrics exposition, the OpenAPI schema, and clean shutdown."""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from tests.api.test_workers import worker_pids
from tests.conftest import ServerFactory
from tests.support.server import ServerProcess


def test_health_reports_workers(server: ServerProcess) -> None:
    body = httpx.get(server.url + "/health").json()
    assert body["status"] == "ok"
    assert body["workers"]["size"] == 2


def test_metrics_exposition_has_the_spec_names(server: ServerProcess) -> None:
    response = httpx.get(server.url + "/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    for name in (
        "functions_errors_total", "functions_timeout_total",
        "functions_memory_exceeded_total", "functions_invocations_total",
        "functions_duration_seconds", "functions_workers_alive",
    ):  # fmt: skip
        assert f"# TYPE {name.removesuffix('_total')}" in response.text, name


def test_openapi_schema_lists_the_routes(server: ServerProcess) -> None:
    schema = httpx.get(server.url + "/openapi.json", timeout=60).json()
    paths = schema["paths"]
    for path in (
        "/functions/v1/deploy", "/functions/v1/invoke/{name}", "/functions/v1/{name}",
        "/functions/v1/functions", "/functions/v1/functions/{name}", "/health", "/metrics",
    ):  # fmt: skip
        assert path in paths, path
    nodes = paths["/functions/v1/nodes"]["get"]["responses"]["200"]["content"]
    assert nodes["application/json"]["schema"]["$ref"].endswith("/NodeList")
    node_fields = schema["components"]["schemas"]["NodeView"]["properties"]
    assert {"id", "address", "version", "heartbeat_at", "workers", "in_flight"} <= set(node_fields)
    deploy_body = paths["/functions/v1/deploy"]["post"]["requestBody"]["content"]
    assert set(deploy_body) == {"application/json", "multipart/form-data"}


def test_stopping_the_server_stops_its_workers(start_server: ServerFactory) -> None:
    with start_server() as server:
        pids = worker_pids(server)
        assert len(pids) == 2
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and any(_alive(pid) for pid in pids):
        time.sleep(0.05)
    assert not any(_alive(pid) for pid in pids)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"
