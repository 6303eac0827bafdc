"""Issue 17 and issue 10 item 6, through the real server: readable validation errors,
the bare last-resort 500 on the same keep-alive connection, 405 with `Allow`."""

from __future__ import annotations

import json
import socket
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.conftest import ServerFactory
from tests.support.build import wat
from tests.support.server import ServerProcess
from wasmlet.api.app import FAULTS_ENV

FORBIDDEN = ('File "', "line ", "{'type'", "Traceback", ".py", "/tmp", "/work", "site-packages")


@dataclass(frozen=True)
class Invalid:
    method: str
    path: str
    says: str  # the readable sentence the message must contain
    field: str | None = None  # the `errors` entry's field, when the problem is a field's
    status: int = 400
    query: dict[str, str] | None = None
    body: Any = None
    content: bytes | None = None


@pytest.fixture(scope="module")
def deployed(server: ServerProcess) -> str:
    name = "errbodies-json"
    response = server.deploy(name, wat("echo"), {"content_type": "application/json"})
    assert response.status_code in (200, 201), response.text
    return name


FN = "errbodies-json"
CASES = [
    Invalid("GET", "/functions/v1/stats", "minutes must be greater than 0", "query.minutes",
            query={"minutes": "0"}),
    Invalid("GET", "/functions/v1/dlq", "limit must be an integer", "query.limit",
            query={"limit": "many"}),
    Invalid("GET", "/functions/v1/dlq", "offset must be at least 0",
            "query.offset", query={"offset": "-1"}),
    Invalid("GET", f"/functions/v1/functions/{FN}/logs",
            "since must be epoch seconds or an ISO 8601 time", "query.since",
            query={"since": "yesterday"}),
    Invalid("GET", f"/functions/v1/functions/{FN}/logs", "level must be one of", "query.level",
            query={"level": "loud"}),
    Invalid("GET", f"/functions/v1/functions/{FN}/invocations", "status must be like 500 or 5xx",
            "query.status", query={"status": "600"}),
    Invalid("GET", f"/functions/v1/functions/{FN}/invocations",
            "before must be at least 0", "query.before", query={"before": "-2"}),
    Invalid("PATCH", f"/functions/v1/functions/{FN}",
            "timeout_ms must be at least 1", "timeout_ms",
            body={"timeout_ms": 0}),
    Invalid("PATCH", f"/functions/v1/functions/{FN}", "retry.max_retries must be an integer",
            "retry.max_retries", body={"retry": {"max_retries": "often"}}),
    Invalid("PATCH", f"/functions/v1/functions/{FN}",
            "expecting property name enclosed in double quotes at character 1", "body",
            content=b"{nope"),
    Invalid("POST", "/functions/v1/deploy", "memory_mb must be an integer",
            "config.memory_mb",
            body={"name": "errbodies-x", "wasm": "AGFzbQEAAAA=", "config": {"memory_mb": "lots"}}),
    Invalid("POST", "/functions/v1/deploy", "colour is not a known field", "config.colour",
            body={"name": "errbodies-x", "wasm": "AGFzbQEAAAA=", "config": {"colour": "red"}}),
    Invalid("POST", "/functions/v1/deploy", "expecting property name", "body",
            content=b"{nope"),
    Invalid("POST", f"/functions/v1/invoke/{FN}", "expecting value at character 0",
            "body", content=b"not json"),
    Invalid("GET", "/functions/v1/functions/errbodies-none", "Function not found: errbodies-none",
            status=404),
    Invalid("GET", "/functions/v1/invocations/errbodies-none", "No invocation errbodies-none",
            status=404),
    Invalid("GET", "/functions/v1/dlq/errbodies-none", "No dead letter errbodies-none",
            status=404),
    Invalid("POST", "/functions/v1/schedules/errbodies-none/s1/pause",
            "No schedule s1 for function errbodies-none", status=404),
]  # fmt: skip


def _clean(text: str) -> None:
    for marker in FORBIDDEN:
        assert marker not in text, f"{marker!r} in {text}"


@pytest.mark.parametrize("case", CASES, ids=[f"{c.method} {c.path} {c.says}" for c in CASES])
def test_invalid_request_gets_a_readable_error(
    server: ServerProcess, deployed: str, case: Invalid
) -> None:
    response = httpx.request(
        case.method,
        server.url + case.path,
        params=case.query,
        json=case.body,
        content=case.content,
        headers={**server.service_headers(), "content-type": "application/json"},
        timeout=30,
    )
    assert response.status_code == case.status, response.text
    error = response.json()["error"]
    assert case.says in error["message"]
    assert error["retriable"] is False
    assert error["request_id"] == response.headers["x-request-id"]
    if case.field is not None:
        assert {"field": case.field, "problem": error["errors"][0]["problem"]} in error["errors"]
        assert any(case.says in p["problem"] for p in error["errors"] if p["field"] == case.field)
    _clean(response.text)
    request_id = response.headers["x-request-id"]
    for line in server.json_logs():
        if line.get("request_id") == request_id:
            _clean(json.dumps(line))


def test_every_problem_is_listed(server: ServerProcess) -> None:
    response = httpx.get(
        server.url + "/functions/v1/dlq",
        params={"limit": "0", "offset": "-1"},
        headers=server.service_headers(),
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "invalid_payload"
    assert error["errors"] == [
        {"field": "query.limit", "problem": "limit must be at least 1"},
        {"field": "query.offset", "problem": "offset must be at least 0"},
    ]
    assert error["message"] == ("limit must be at least 1; offset must be at least 0")


def test_error_body_says_whether_retrying_can_help(server: ServerProcess) -> None:
    missing = server.invoke("errbodies-missing")
    assert missing.status_code == 404
    assert missing.json()["error"]["retriable"] is False


def _raw_exchange(sock: socket.socket, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """One request and its whole response (Content-Length framed) on an open socket."""
    sock.sendall(request)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, "the server closed the connection"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, _, v in (x.partition(":") for x in lines[1:])}
    while len(body) < int(headers["content-length"]):
        chunk = sock.recv(65536)
        assert chunk, "the server closed the connection"
        body += chunk
    return status, headers, body


def test_unhandled_exception_is_a_bare_500_on_the_same_connection(
    start_server: ServerFactory,
) -> None:
    with start_server(**{FAULTS_ENV: "1"}) as server:
        with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
            status, headers, body = _raw_exchange(
                sock, b"GET /_test/faults/internal HTTP/1.1\r\nHost: x\r\n\r\n"
            )
            assert status == 500
            request_id = headers["x-request-id"]
            assert json.loads(body) == {
                "error": {
                    "type": "internal_error",
                    "retriable": False,
                    "message": "internal error",
                    "function": None,
                    "request_id": request_id,
                }
            }
            assert headers.get("connection", "").lower() != "close"
            # The next request on the same connection is answered.
            status, _, body = _raw_exchange(sock, b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            assert status == 200
            assert json.loads(body)["status"] == "ok"
        logged = server.wait_for_log(request_id=request_id, message="unexpected error")
        assert "injected fault" in logged["error"]
        assert "Traceback" in logged["traceback"]


def test_fault_routes_are_absent_without_the_test_switch(server: ServerProcess) -> None:
    assert httpx.get(server.url + "/_test/faults/internal").status_code == 404


def test_unknown_method_is_405_with_allow(server: ServerProcess) -> None:
    response = httpx.request("TRACE", server.url + "/health")
    assert response.status_code == 405
    assert response.headers["allow"] == "GET"
    assert response.json()["error"]["type"] == "method_not_allowed"


def test_management_path_with_another_method_is_405_not_an_invocation(
    server: ServerProcess,
) -> None:
    response = httpx.post(
        server.url + "/functions/v1/functions/errbodies-x", headers=server.service_headers()
    )
    assert response.status_code == 405
    assert response.headers["allow"] == "DELETE, GET, PATCH"
    response = httpx.get(server.url + "/functions/v1/deploy", headers=server.service_headers())
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
