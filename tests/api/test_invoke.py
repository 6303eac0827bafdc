"""Successful invocations: body, status, headers, methods and routes."""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from tests.support.build import build_c, wat
from tests.support.server import ServerProcess

FIXTURES = Path(__file__).parent.parent / "fixtures"


def test_status_headers_and_logs_set_by_the_guest(server: ServerProcess, fname: str) -> None:
    server.deploy(fname, build_c("headers"))
    response = server.invoke(fname, b'{"x": 1}')
    assert response.status_code == 201, response.text
    assert response.headers["x-powered-by"] == "wasmlet"


def test_repeated_headers_are_all_sent(server: ServerProcess, fname: str) -> None:
    server.deploy(fname, wat((FIXTURES / "two_cookies.wat").read_text()))
    response = server.invoke(fname)
    assert response.status_code == 202
    assert response.headers.get_list("set-cookie") == ["a=1", "b=2"]
    assert response.headers["content-type"] == "text/plain; charset=utf-8"


def test_supabase_route_takes_any_method_and_a_subpath(server: ServerProcess, fname: str) -> None:
    server.deploy(fname, build_c("env_dump"))
    for method in ("GET", "POST", "PUT", "PATCH", "DELETE"):
        response = httpx.request(
            method, f"{server.url}/functions/v1/{fname}/users/7?q=1", headers=server.anon_headers()
        )
        assert response.status_code == 200, (method, response.text)
        assert f"WASMLET_HTTP_METHOD={method}" in response.text
        assert "WASMLET_HTTP_PATH=/users/7" in response.text
        assert "WASMLET_HTTP_QUERY=q=1" in response.text
        assert f"WASMLET_FUNCTION={fname}" in response.text


def test_large_payload_round_trips(server: ServerProcess, fname: str) -> None:
    server.deploy(fname, wat("echo"))
    payload = bytes(range(256)) * 2048  # 512 KiB, every byte value
    response = server.invoke(fname, payload)
    assert response.status_code == 200
    assert response.content == payload


def test_async_invocation_keeps_the_query_string_encoded(server: ServerProcess, fname: str) -> None:
    server.deploy(fname, build_c("env_dump"))
    queued = httpx.post(
        f"{server.url}/functions/v1/invoke/{fname}?q=a%26b&x=1+2&async=true",
        headers=server.anon_headers(),
    )
    assert queued.status_code == 202
    url = f"{server.url}/functions/v1/invocations/{queued.json()['invocation_id']}"
    deadline = time.monotonic() + 60
    while (state := httpx.get(url, headers=server.anon_headers()).json())["status"] != "done":
        assert time.monotonic() < deadline, state
        time.sleep(0.05)
    assert "WASMLET_HTTP_QUERY=q=a%26b&x=1+2\n" in state["result"]["body"]["text"]
