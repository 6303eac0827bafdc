"""The spec's error table and failure scenarios, through the real HTTP server.

Each case checks the status, the error type, the metrics and the JSON log line.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.support.build import build_c, wat
from tests.support.server import ServerProcess

SPIN_ON_S = (Path(__file__).parent.parent / "fixtures" / "spin_on_s.wat").read_text()


def _error(response: httpx.Response) -> dict[str, str]:
    body: dict[str, dict[str, str]] = response.json()
    assert set(body) == {"error"}
    assert body["error"]["request_id"] == response.headers["x-request-id"]
    return body["error"]


def test_missing_function_is_404(server: ServerProcess) -> None:
    before = server.metric("functions_refused_total", error_type="function_not_found")
    response = server.invoke("nonexistent")
    assert response.status_code == 404
    error = _error(response)
    assert error["type"] == "function_not_found"
    assert error["message"] == "Function not found: nonexistent"
    after = server.metric("functions_refused_total", error_type="function_not_found")
    assert after == before + 1
    log = server.wait_for_log(request_id=response.headers["x-request-id"])
    assert log["level"] == "WARNING"
    assert log["error"] == "404 Function not found: nonexistent"
    assert log["function"] == "nonexistent"


@pytest.mark.parametrize(
    ("source", "build"),
    [("trap", wat), ("error_exit", wat), ("trap", build_c), ("error_exit", build_c)],
    ids=["wat-trap", "wat-exit", "c-trap", "c-exit"],
)
def test_function_error_is_500(
    server: ServerProcess, fname: str, source: str, build: Callable[[str], bytes]
) -> None:
    server.deploy(fname, build(source))
    before = server.metric("functions_errors_total", name=fname, error_type="function_error")
    response = server.invoke(fname)
    assert response.status_code == 500
    error = _error(response)
    assert error["type"] == "function_error"
    assert error["function"] == fname
    assert error["message"].startswith("Function error")
    after = server.metric("functions_errors_total", name=fname, error_type="function_error")
    assert after == before + 1
    log = server.wait_for_log(request_id=response.headers["x-request-id"])
    assert log["level"] == "ERROR"
    assert log["error"].startswith("500 ")
    if source == "error_exit":
        assert "Email service down" in log["stderr"]


def test_stack_overflow_is_500_function_error(server: ServerProcess, fname: str) -> None:
    server.deploy(fname, build_c("stack_overflow"))
    response = server.invoke(fname)
    assert response.status_code == 500
    assert _error(response)["type"] == "function_error"


def test_timeout_is_504_and_next_call_works(server: ServerProcess, fname: str) -> None:
    server.deploy(fname, wat(SPIN_ON_S), {"timeout_ms": 500})
    timeouts = server.metric("functions_timeout_total", name=fname)
    started = time.monotonic()
    response = server.invoke(fname, b"spin")
    elapsed = time.monotonic() - started
    assert response.status_code == 504
    error = _error(response)
    assert error["type"] == "timeout"
    assert error["message"] == "Function timeout after 0.5s"
    assert 0.45 < elapsed < 60  # stopped by the timeout, not by finishing: it never does
    assert server.metric("functions_timeout_total", name=fname) == timeouts + 1
    assert server.metric("functions_errors_total", name=fname, error_type="timeout") >= 1
    log = server.wait_for_log(request_id=response.headers["x-request-id"])
    assert log["error"] == "504 Function timeout after 0.5s"
    assert log["duration_ms"] >= 450
    # The epoch interrupt freed the worker without killing it; the same function
    # answers its next call.
    restarts = server.metric("functions_worker_restarts_total", reason="killed")
    for _ in range(3):
        assert server.invoke(fname, b"go").content == b"ok"
    assert server.metric("functions_worker_restarts_total", reason="killed") == restarts


@pytest.mark.slow
def test_default_timeout_is_ten_seconds(server: ServerProcess, fname: str) -> None:
    server.deploy(fname, build_c("infinite_loop"))
    started = time.monotonic()
    response = server.invoke(fname, timeout_s=30)
    assert response.status_code == 504
    assert _error(response)["message"] == "Function timeout after 10s"
    assert 9.9 < time.monotonic() - started < 60


@pytest.mark.parametrize("build", [wat, build_c], ids=["wat", "c"])
def test_memory_limit_is_507(
    server: ServerProcess, fname: str, build: Callable[[str], bytes]
) -> None:
    server.deploy(fname, build("memory_hog"))
    before = server.metric("functions_memory_exceeded_total", name=fname)
    response = server.invoke(fname)
    assert response.status_code == 507
    error = _error(response)
    assert error["type"] == "memory_limit_exceeded"
    assert error["message"] == "Function exceeded memory limit (128MB)"
    assert server.metric("functions_memory_exceeded_total", name=fname) == before + 1
    log = server.wait_for_log(request_id=response.headers["x-request-id"])
    assert log["error"] == "507 Function exceeded memory limit (128MB)"
    assert server.invoke(fname).status_code == 507


def test_memory_hog_runs_when_the_limit_allows_it(server: ServerProcess, fname: str) -> None:
    server.deploy(fname, build_c("memory_hog"), {"memory_mb": 512})
    response = server.invoke(fname)
    assert response.status_code == 200, response.text


def test_payload_too_large_is_413(server: ServerProcess, fname: str) -> None:
    server.deploy(fname, wat("echo"))
    response = server.invoke(fname, b"x" * (1024 * 1024 + 1))
    assert response.status_code == 413
    assert _error(response)["type"] == "payload_too_large"
    assert server.metric("functions_errors_total", name=fname, error_type="payload_too_large") == 1
    assert server.wait_for_log(request_id=response.headers["x-request-id"])["status"] == 413
    assert server.invoke(fname, b"x" * 1024).status_code == 200


def test_payload_the_declared_content_type_cannot_parse_is_400(
    server: ServerProcess, fname: str
) -> None:
    server.deploy(fname, wat("echo"), {"content_type": "application/json"})
    response = server.invoke(fname, b"{not json", {"content-type": "application/json"})
    assert response.status_code == 400
    assert _error(response)["type"] == "invalid_payload"
    assert server.metric("functions_errors_total", name=fname, error_type="invalid_payload") == 1
    log = server.wait_for_log(request_id=response.headers["x-request-id"])
    assert log["error_type"] == "invalid_payload"
    ok = server.invoke(fname, b'{"a": 1}', {"content-type": "application/json"})
    assert ok.status_code == 200
    assert ok.json() == {"a": 1}


def test_output_flood_is_cut_off_not_the_server(server: ServerProcess, fname: str) -> None:
    server.deploy(fname, wat("print_forever"), {"timeout_ms": 120_000})
    response = server.invoke(fname, timeout_s=100)
    assert response.status_code == 500  # cut by the cap: the timeout would have been 504
    assert "response body over" in _error(response)["message"]
    assert httpx.get(server.url + "/health").status_code == 200


def test_request_id_is_honoured(server: ServerProcess) -> None:
    response = server.invoke("nonexistent", headers={"x-request-id": "trace-123"})
    assert response.headers["x-request-id"] == "trace-123"
    assert _error(response)["request_id"] == "trace-123"


def test_unknown_route_is_json_404(server: ServerProcess) -> None:
    response = httpx.get(server.url + "/nope")
    assert response.status_code == 404
    assert _error(response)["type"] == "not_found"


def test_invocation_log_line_has_the_spec_fields(server: ServerProcess, fname: str) -> None:
    server.deploy(fname, wat("hello"))
    response = server.invoke(fname)
    log = server.wait_for_log(request_id=response.headers["x-request-id"])
    for field in (
        "level", "service", "operation", "function", "error", "duration_ms", "user_id",
        "request_id", "timestamp",
    ):  # fmt: skip
        assert field in log, field
    assert log["service"] == "functions"
    assert log["operation"] == "invoke"
    assert log["function"] == fname
    assert log["error"] is None
    assert log["timestamp"].endswith("Z")


def test_invocations_counted_by_status(server: ServerProcess, fname: str) -> None:
    server.deploy(fname, wat("hello"))
    before = server.metric("functions_invocations_total", name=fname, status="200")
    for _ in range(3):
        server.invoke(fname)
    assert server.metric("functions_invocations_total", name=fname, status="200") == before + 3
    count = server.metric("functions_duration_seconds_count", name=fname)
    assert count >= 3
