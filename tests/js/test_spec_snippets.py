"""The spec's JavaScript snippets, deployed as written, through the real HTTP server.

Each case checks the status, the error type, the metrics and the invocation's log
line, as tests/api/test_error_model.py does for WebAssembly guests.
"""

from __future__ import annotations

import time

import httpx
import pytest

from tests.support.js import deploy_js, example
from tests.support.server import ServerProcess


def _error(response: httpx.Response) -> dict[str, str]:
    body: dict[str, dict[str, str]] = response.json()
    assert set(body) == {"error"}
    assert body["error"]["request_id"] == response.headers["x-request-id"]
    return body["error"]


def test_thrown_error_is_500_with_message_and_stack_in_the_log(
    server: ServerProcess, fname: str
) -> None:
    assert deploy_js(server, fname, example("throw_error")).status_code == 201
    before = server.metric("functions_errors_total", name=fname, error_type="function_error")
    response = server.invoke(fname)
    assert response.status_code == 500
    error = _error(response)
    assert error["type"] == "function_error"
    assert error["function"] == fname
    assert error["message"] == "Function error: Uncaught Error: Unexpected error"
    after = server.metric("functions_errors_total", name=fname, error_type="function_error")
    assert after == before + 1
    log = server.wait_for_log(request_id=response.headers["x-request-id"], operation="invoke")
    assert log["level"] == "ERROR"
    assert log["error"] == "500 Function error: Uncaught Error: Unexpected error"
    assert "Uncaught Error: Unexpected error" in log["stderr"]
    assert "at handler (handler.js:4)" in log["stderr"]


@pytest.mark.parametrize("snippet", ["infinite_loop", "timeout"])
def test_infinite_loop_is_504_and_the_next_call_works(
    server: ServerProcess, fname: str, snippet: str
) -> None:
    # The loop and a working handler in one function: the query picks the path, so
    # "the next call works" is shown on the very function that timed out.
    source = example(snippet).replace(
        "export async function handler() {",
        "export async function handler(req) {\n  if (req.query.ok) return 'ok';",
    )
    assert "req.query.ok" in source
    assert deploy_js(server, fname, source, {"timeout_ms": 1000}).status_code == 201
    timeouts = server.metric("functions_timeout_total", name=fname)
    restarts = server.metric("functions_worker_restarts_total", reason="killed")
    started = time.monotonic()
    response = server.invoke(fname)
    elapsed = time.monotonic() - started
    assert response.status_code == 504
    error = _error(response)
    assert error["type"] == "timeout"
    assert error["message"] == "Function timeout after 1s"
    assert 0.95 < elapsed < 60  # stopped by the timeout: the loop never ends by itself
    assert server.metric("functions_timeout_total", name=fname) == timeouts + 1
    log = server.wait_for_log(request_id=response.headers["x-request-id"], operation="invoke")
    assert log["error"] == "504 Function timeout after 1s"
    for _ in range(3):
        ok = httpx.post(
            f"{server.url}/functions/v1/invoke/{fname}?ok=1",
            headers=server.anon_headers(),
            timeout=30,
        )
        assert ok.status_code == 200, ok.text
        assert ok.text == "ok"
    # The epoch interrupt stopped the guest; no worker had to be killed.
    assert server.metric("functions_worker_restarts_total", reason="killed") == restarts


@pytest.mark.slow
def test_scenario_1_unchanged_times_out_after_the_default_ten_seconds(
    server: ServerProcess, fname: str
) -> None:
    assert deploy_js(server, fname, example("infinite_loop")).status_code == 201
    started = time.monotonic()
    response = server.invoke(fname, timeout_s=30)
    assert response.status_code == 504
    assert _error(response)["message"] == "Function timeout after 10s"
    assert 9.9 < time.monotonic() - started < 60


def test_200_mb_typed_array_is_507(server: ServerProcess, fname: str) -> None:
    assert deploy_js(server, fname, example("memory_hog")).status_code == 201
    before = server.metric("functions_memory_exceeded_total", name=fname)
    response = server.invoke(fname)
    assert response.status_code == 507
    error = _error(response)
    assert error["type"] == "memory_limit_exceeded"
    assert error["message"] == "Function exceeded memory limit (128MB)"
    assert server.metric("functions_memory_exceeded_total", name=fname) == before + 1
    log = server.wait_for_log(request_id=response.headers["x-request-id"], operation="invoke")
    assert log["error"] == "507 Function exceeded memory limit (128MB)"
    assert "out of memory" in log["stderr"]
    assert server.invoke(fname).status_code == 507


def test_the_same_allocation_runs_when_the_limit_allows_it(
    server: ServerProcess, fname: str
) -> None:
    assert deploy_js(server, fname, example("memory_hog"), {"memory_mb": 320}).status_code == 201
    response = server.invoke(fname)
    assert response.status_code == 200, response.text
    assert response.json() == 200 * 1024 * 1024


def test_filling_an_array_past_the_limit_is_507(server: ServerProcess, fname: str) -> None:
    source = """
export async function handler() {
  const rows = [];
  while (true) rows.push({ id: rows.length, name: "row " + rows.length });
}
"""
    assert deploy_js(server, fname, source, {"memory_mb": 32}).status_code == 201
    response = server.invoke(fname)
    assert response.status_code == 507
    assert _error(response)["message"] == "Function exceeded memory limit (32MB)"


def test_the_spec_new_array_snippet_is_sparse_and_succeeds(
    server: ServerProcess, fname: str
) -> None:
    assert deploy_js(server, fname, example("sparse_array")).status_code == 201
    response = server.invoke(fname)
    assert response.status_code == 200
    assert response.content == b""


def test_a_caught_allocation_failure_is_handled_by_the_function(
    server: ServerProcess, fname: str
) -> None:
    source = """
export async function handler() {
  try {
    new Uint8Array(200 * 1024 * 1024);
  } catch (error) {
    return { recovered: String(error) };
  }
}
"""
    assert deploy_js(server, fname, source).status_code == 201
    response = server.invoke(fname)
    assert response.status_code == 200, response.text
    assert response.json() == {"recovered": "InternalError: out of memory"}
