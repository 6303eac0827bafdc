"""Outbound HTTP end to end: C and WAT functions in a real `wasmlet serve` calling a real
HTTP server on 127.0.0.1 (the outside world), through `allowed_hosts`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.support.appdb import wait_until
from tests.support.build import build_c, wat
from tests.support.server import ServerProcess, free_port
from tests.support.upstream import HELLO, Upstream, running_upstream


@pytest.fixture(scope="module")
def upstream() -> Iterator[Upstream]:
    with running_upstream() as server:
        yield server


@pytest.fixture(scope="module")
def fetch_wasm() -> bytes:
    return build_c("http_fetch")


def deploy(server: ServerProcess, name: str, wasm: bytes, **config: Any) -> None:
    response = server.deploy(name, wasm, config)
    assert response.status_code in (200, 201), response.text


def fetch(server: ServerProcess, name: str, url: str, **request: Any) -> httpx.Response:
    return server.invoke(name, json.dumps({"url": url, **request}).encode() + b"\n")


def guest_error(response: httpx.Response) -> str:
    assert response.status_code == 502, response.text
    kind: str = response.json()["error"]["type"]
    return kind


def dlq_entries(server: ServerProcess, name: str) -> list[dict[str, Any]]:
    response = httpx.get(
        server.url + "/functions/v1/dlq", params={"function": name},
        headers=server.service_headers(),
    )  # fmt: skip
    entries: list[dict[str, Any]] = response.json()["entries"]
    return entries


def invoke_async(server: ServerProcess, name: str, payload: bytes) -> None:
    response = httpx.post(
        f"{server.url}/functions/v1/invoke/{name}",
        content=payload,
        headers={**server.anon_headers(), "prefer": "respond-async"},
    )
    assert response.status_code == 202, response.text


def test_a_c_function_gets_the_body_through_an_allow_list_entry(
    server: ServerProcess, upstream: Upstream, fname: str, fetch_wasm: bytes
) -> None:
    entry = f"http://127.0.0.1:{upstream.port}"
    deploy(server, fname, fetch_wasm, allowed_hosts=[entry])
    response = fetch(server, fname, upstream.url("/hello?token=s3cr3t-in-query"))
    assert response.status_code == 200, response.text
    assert response.content == HELLO
    assert server.metric("functions_http_requests_total", name=fname, host=entry, outcome="ok") == 1
    line = server.wait_for_log(operation="http_request", function=fname)
    assert line["origin"] == entry + "" and line["allowed_by"] == entry and line["status"] == 200
    assert not any("s3cr3t" in text for text in server.lines)


def test_method_headers_and_body_reach_the_upstream(
    server: ServerProcess, upstream: Upstream, fname: str, fetch_wasm: bytes
) -> None:
    deploy(server, fname, fetch_wasm, allowed_hosts=[f"http://127.0.0.1:{upstream.port}"])
    head = {"url": upstream.url("/echo"), "method": "POST", "headers": {"x-api": "v1"}}
    response = server.invoke(fname, json.dumps(head).encode() + b'\n{"order": 7}')
    assert response.status_code == 201
    seen = response.json()
    assert seen["method"] == "POST" and seen["body"] == '{"order": 7}'
    assert seen["headers"]["x-api"] == "v1"


def test_without_an_entry_the_guest_sees_forbidden_host(
    server: ServerProcess, upstream: Upstream, fname: str, fetch_wasm: bytes
) -> None:
    deploy(server, fname, fetch_wasm)
    assert guest_error(fetch(server, fname, upstream.url("/hello"))) == "forbidden_host"
    other = f"http://127.0.0.1:{upstream.port + 1}"
    deploy(server, fname, fetch_wasm, allowed_hosts=[other])
    assert guest_error(fetch(server, fname, upstream.url("/hello"))) == "forbidden_host"
    assert server.metric("functions_http_requests_total", name=fname, host="-") == 2


def test_the_wat_example_fetches_and_reports_errors(
    server: ServerProcess, upstream: Upstream, fname: str
) -> None:
    deploy(server, fname, wat("http_get"), allowed_hosts=[f"http://127.0.0.1:{upstream.port}"])
    ok = server.invoke(fname, json.dumps({"url": upstream.url("/hello")}).encode())
    assert ok.status_code == 200 and ok.content == HELLO
    refused = server.invoke(fname, json.dumps({"url": "http://10.0.0.1/"}).encode())
    assert refused.status_code == 502 and refused.json()["error"]["type"] == "forbidden_host"


@pytest.mark.parametrize(
    "url",
    [
        "http://10.0.0.1/",
        "http://169.254.169.254/latest/meta-data/",
        "http://localhost:{port}/hello",
    ],
)
def test_private_addresses_are_refused_under_a_wildcard(
    server: ServerProcess, upstream: Upstream, fname: str, fetch_wasm: bytes, url: str
) -> None:
    deploy(server, fname, fetch_wasm, allowed_hosts=["http://*", "http://*:*"])
    assert guest_error(fetch(server, fname, url.format(port=upstream.port))) == "forbidden_host"


def test_a_name_resolving_to_loopback_is_reached_when_listed(
    server: ServerProcess, upstream: Upstream, fname: str, fetch_wasm: bytes
) -> None:
    deploy(
        server, fname, fetch_wasm, allowed_hosts=["http://*:*", f"http://localhost:{upstream.port}"]
    )
    response = fetch(server, fname, upstream.url("/hello", host="localhost"))
    assert response.status_code == 200 and response.content == HELLO


def test_a_slow_upstream_is_cut_at_the_function_deadline(
    server: ServerProcess, upstream: Upstream, fname: str, fetch_wasm: bytes
) -> None:
    entry = f"http://127.0.0.1:{upstream.port}"
    deploy(server, fname, fetch_wasm, allowed_hosts=[entry], timeout_ms=1000)
    restarts = server.metric("functions_worker_restarts_total")
    response = fetch(server, fname, upstream.url("/slow"))
    assert response.status_code == 504 and response.json()["error"]["type"] == "timeout"
    # Cut by the host call's own deadline, not by killing a stuck worker.
    assert server.metric("functions_worker_restarts_total") == restarts
    timeouts = server.metric(
        "functions_http_requests_total", name=fname, host=entry, outcome="timeout"
    )
    assert timeouts == 1


def test_a_request_timeout_comes_back_to_the_guest(
    server: ServerProcess, upstream: Upstream, fname: str, fetch_wasm: bytes
) -> None:
    deploy(server, fname, fetch_wasm, allowed_hosts=[f"http://127.0.0.1:{upstream.port}"])
    assert guest_error(fetch(server, fname, upstream.url("/slow"), timeout_ms=200)) == "timeout"


def test_an_upstream_that_is_down_is_retried_then_dead_lettered(
    server: ServerProcess, fname: str, fetch_wasm: bytes
) -> None:
    port = free_port()  # nothing listens there
    entry = f"http://127.0.0.1:{port}"
    retry = {"max_retries": 2, "backoff_ms": 50, "jitter": 0.0}
    deploy(
        server, fname, fetch_wasm, allowed_hosts=[entry], env={"ON_ERROR": "fail"}, retry=retry,
        circuit_breaker={"enabled": False},
    )  # fmt: skip
    invoke_async(server, fname, json.dumps({"url": f"{entry}/send"}).encode() + b"\n")
    wait_until(lambda: len(dlq_entries(server, fname)) == 1, 60, "the dead letter")
    (entry_row,) = dlq_entries(server, fname)
    assert entry_row["attempts"] == 3 and entry_row["reason"] == "max_retries_exceeded"
    assert entry_row["error"]["type"] == "host_function_error"
    assert "http_request failed (connect_failed)" in entry_row["error"]["message"]
    failed = server.metric(
        "functions_http_requests_total", name=fname, host=entry, outcome="connect_failed"
    )
    assert failed == 3


def test_a_forbidden_host_is_not_retried(
    server: ServerProcess, upstream: Upstream, fname: str, fetch_wasm: bytes
) -> None:
    deploy(server, fname, fetch_wasm, env={"ON_ERROR": "fail"}, retry={"backoff_ms": 50})
    invoke_async(server, fname, json.dumps({"url": upstream.url("/hello")}).encode() + b"\n")
    wait_until(lambda: len(dlq_entries(server, fname)) == 1, 60, "the dead letter")
    (entry_row,) = dlq_entries(server, fname)
    assert entry_row["attempts"] == 1 and entry_row["reason"] == "non_retriable"
    assert entry_row["error"]["type"] == "host_function_error"


def test_the_breaker_opens_when_an_upstream_keeps_failing(
    server: ServerProcess, fname: str, fetch_wasm: bytes
) -> None:
    entry = f"http://127.0.0.1:{free_port()}"
    breaker = {"min_calls": 3, "failure_rate": 0.5, "window_s": 60, "cooldown_s": 60}
    deploy(
        server, fname, fetch_wasm, allowed_hosts=[entry], env={"ON_ERROR": "fail"},
        circuit_breaker=breaker,
    )  # fmt: skip
    payload = json.dumps({"url": entry}).encode() + b"\n"
    for _ in range(3):
        failed = server.invoke(fname, payload)
        assert failed.status_code == 500
        error = failed.json()["error"]
        assert error["type"] == "host_function_error" and error["retriable"] is True
    refused = server.invoke(fname, payload)
    assert refused.status_code == 503 and refused.json()["error"]["type"] == "circuit_open"


@pytest.mark.parametrize(
    "entry", ["example.com", "https://example.com/path", "ftp://example.com", "http://a:b@c"]
)
def test_a_malformed_entry_is_refused_at_deploy(
    server: ServerProcess, fname: str, entry: str
) -> None:
    response = server.deploy(fname, wat("hello"), {"allowed_hosts": [entry]})
    assert response.status_code == 400
    body = response.json()
    assert body["error"]["type"] == "invalid_config"
    assert body["error"]["errors"][0]["field"] == "config.allowed_hosts[0]"
