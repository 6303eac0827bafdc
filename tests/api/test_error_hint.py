"""Every error body of an invocation names the command that shows its log lines
(`hint`: `wasmlet logs NAME --request-id ID`); other routes' error bodies do not."""

from __future__ import annotations

import httpx

from tests.support.build import wat
from tests.support.server import ServerProcess


def test_invocation_errors_carry_the_logs_command(server: ServerProcess, fname: str) -> None:
    assert server.deploy(fname, wat("trap")).status_code == 201
    for response in (
        server.invoke(fname),  # /functions/v1/invoke/NAME
        httpx.put(f"{server.url}/functions/v1/{fname}/sub", headers=server.anon_headers()),
        server.invoke(f"{fname}-missing"),
    ):
        assert response.status_code >= 400, response.text
        error = response.json()["error"]
        request_id = response.headers["x-request-id"]
        assert error["hint"] == f"wasmlet logs {error['function']} --request-id {request_id}"
        assert {"type", "retriable", "message", "function", "request_id"} <= set(error)

    management = httpx.get(
        f"{server.url}/functions/v1/functions/{fname}-missing",
        headers=server.service_headers(),
    )
    assert management.status_code == 404
    assert "hint" not in management.json()["error"]
    schema = httpx.get(f"{server.url}/openapi.json", timeout=60).json()
    detail = schema["components"]["schemas"]["ErrorDetail"]["properties"]
    assert "hint" in detail
