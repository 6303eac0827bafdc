"""The Python client against a real server: the spec's client retry strategy and
typed exceptions."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from tests.support.build import build_c, wat
from tests.support.scripted import Reply, scripted_server
from tests.support.server import ServerProcess, free_port
from wasmlet.client import (
    AsyncWasmletClient,
    CircuitOpen,
    ConnectionFailed,
    FunctionNotFound,
    FunctionTimeout,
    InvalidPayload,
    MemoryLimitExceeded,
    RequestNotSent,
    ResponseLost,
    RetryPolicy,
    UnexpectedResponse,
    UserCodeError,
    WasmletClient,
)

FAST = RetryPolicy(max_attempts=3, base_delay_s=0.05, jitter=0)


def client(server: ServerProcess, retry: RetryPolicy = FAST) -> WasmletClient:
    return WasmletClient(server.url, server.service_key, retry=retry)


def invocations(server: ServerProcess, name: str, status: str) -> float:
    return server.metric("functions_invocations_total", name=name, status=status)


def test_a_500_function_error_is_not_retried(server: ServerProcess, fname: str) -> None:
    server.deploy(fname, wat("trap"))
    with client(server) as c, pytest.raises(UserCodeError) as raised:
        c.invoke(fname)
    assert raised.value.status == 500 and raised.value.request_id
    assert not raised.value.retriable
    assert invocations(server, fname, "500") == 1  # the body said retriable: false


def test_a_retriable_504_is_retried_up_to_the_attempts(server: ServerProcess, fname: str) -> None:
    server.deploy(fname, wat("infinite_loop"), {"timeout_ms": 100})
    with client(server) as c, pytest.raises(FunctionTimeout):
        c.invoke(fname)
    assert invocations(server, fname, "504") == 3


def test_a_post_is_not_resent_after_a_read_timeout(server: ServerProcess, fname: str) -> None:
    server.deploy(fname, wat("sleep"))
    with (
        WasmletClient(server.url, server.service_key, timeout_s=0.3, retry=FAST) as c,
        pytest.raises(ResponseLost),
    ):
        c.invoke(fname, b"1500")
    deadline = time.monotonic() + 60
    while invocations(server, fname, "200") < 1:  # the call ran, once, after the client left
        assert time.monotonic() < deadline
        time.sleep(0.1)
    time.sleep(0.5)
    assert invocations(server, fname, "200") == 1


def test_a_slow_upstream_gets_the_post_once() -> None:
    with scripted_server(Reply(200, b"late", delay_s=1.0)) as slow:
        with (
            WasmletClient(slow.url, "k", timeout_s=0.2, retry=FAST) as c,
            pytest.raises(ResponseLost) as raised,
        ):
            c.invoke("anything", b"payload")
        assert slow.count("POST") == 1
    assert isinstance(raised.value, ConnectionFailed) and not raised.value.retriable


@pytest.mark.parametrize("status", [502, 504, 405])
def test_a_proxy_error_page_is_an_unexpected_response_with_its_status(status: int) -> None:
    page = f"<html><body><h1>{status} from the proxy</h1></body></html>".encode()
    reply = Reply(status, page, {"content-type": "text/html"})
    with scripted_server(reply) as proxy, WasmletClient(proxy.url, "k", retry=FAST) as c:
        with pytest.raises(UnexpectedResponse) as raised:
            c.invoke("anything", b"payload")
        assert proxy.count("POST") == 1  # the call may have reached the function: not resent
        with pytest.raises(UnexpectedResponse):
            c.get("anything")
    error = raised.value
    assert error.status == status and f"{status} from the proxy" in error.message
    assert not isinstance(error, UserCodeError)


def test_a_proxy_503_with_retry_after_is_retried_after_it() -> None:
    busy = Reply(503, b"<html>busy</html>", {"content-type": "text/html", "retry-after": "1"})
    with scripted_server(busy, Reply(200, b"ok")) as proxy:
        started = time.monotonic()
        with WasmletClient(proxy.url, "k", retry=FAST) as c:
            response = c.invoke("anything", b"payload")
        assert response.body == b"ok" and response.attempts == 2
        assert time.monotonic() - started >= 0.95  # Retry-After: 1, not the 50 ms backoff
        assert proxy.count("POST") == 2


def test_never_retries_a_400(server: ServerProcess, fname: str) -> None:
    server.deploy(fname, wat("echo"), {"content_type": "application/json"})
    with client(server) as c, pytest.raises(InvalidPayload):
        c.invoke(fname, b"{not json", headers={"content-type": "application/json"})
    assert server.metric("functions_errors_total", name=fname, error_type="invalid_payload") == 1


def test_typed_exceptions(server: ServerProcess, fname: str) -> None:
    once = RetryPolicy(max_attempts=1)
    server.deploy(fname + "-slow", wat("infinite_loop"), {"timeout_ms": 200})
    server.deploy(fname + "-hog", wat("memory_hog"))
    with client(server, once) as c:
        with pytest.raises(FunctionTimeout):
            c.invoke(fname + "-slow")
        with pytest.raises(MemoryLimitExceeded):
            c.invoke(fname + "-hog")
        with pytest.raises(FunctionNotFound):
            c.invoke(fname + "-missing")


def test_429_is_retried_after_retry_after(server: ServerProcess, fname: str) -> None:
    server.deploy(fname, wat("sleep"), {"max_concurrency": 1})
    holder = threading.Thread(target=server.invoke, args=(fname, b"1500"))
    holder.start()
    time.sleep(0.3)
    started = time.monotonic()
    try:
        with client(server) as c:
            response = c.invoke(fname, b"1")
    finally:
        holder.join()
    assert response.status == 200 and response.attempts >= 2
    assert time.monotonic() - started >= 1.0  # waited Retry-After: 1, not the 50 ms backoff
    assert server.metric("functions_errors_total", name=fname, error_type="too_many_requests") >= 1


def test_503_honours_retry_after(server: ServerProcess, fname: str) -> None:
    breaker = {"min_calls": 2, "failure_rate": 0.5, "cooldown_s": 1.5, "window_s": 60}
    server.deploy(fname, wat("trap"), {"circuit_breaker": breaker})
    for _ in range(2):
        server.invoke(fname)
    two_tries = RetryPolicy(max_attempts=2, base_delay_s=0.05, jitter=0)
    started = time.monotonic()
    with client(server, two_tries) as c, pytest.raises(UserCodeError):
        c.invoke(fname)  # 503 circuit_open, waits Retry-After: 2, then the probe fails: 500
    assert time.monotonic() - started >= 1.9
    with client(server, RetryPolicy(max_attempts=1)) as c, pytest.raises(CircuitOpen):
        c.invoke(fname)


def test_connection_errors_are_retried_then_raised() -> None:
    started = time.monotonic()
    with (
        WasmletClient(f"http://127.0.0.1:{free_port()}", "k", retry=FAST) as c,
        pytest.raises(RequestNotSent),
    ):
        c.invoke("anything")
    assert time.monotonic() - started >= 0.15  # 0.05 + 0.1 of backoff


def test_async_client_and_async_invocations(server: ServerProcess, fname: str) -> None:
    server.deploy(fname, build_c("echo"))

    async def run() -> tuple[bytes, str]:
        async with AsyncWasmletClient(server.url, server.service_key, retry=FAST) as c:
            response = await c.invoke(fname, b"async client")
            return response.body, response.text

    body, text = asyncio.run(run())
    assert body == b"async client" and text == "async client"
    with client(server) as c:
        invocation_id = c.invoke_async(fname, b"queued")
        deadline = time.monotonic() + 60
        while c.invocation(invocation_id)["status"] != "done":
            assert time.monotonic() < deadline
            time.sleep(0.05)
        state = c.invocation(invocation_id)
        assert state["result"]["body"]["text"] == "queued"
        assert state["request_id"] and state["request_id"] != invocation_id


def test_the_async_client_reads_errors_and_resends_the_same_way() -> None:
    page = Reply(502, b"<html>bad gateway</html>", {"content-type": "text/html"})

    async def run(url: str, timeout_s: float) -> BaseException:
        async with AsyncWasmletClient(url, "k", timeout_s=timeout_s, retry=FAST) as c:
            try:
                await c.invoke("anything", b"payload")
            except Exception as exc:
                return exc
        raise AssertionError("the call succeeded")

    with scripted_server(page) as proxy:
        error = asyncio.run(run(proxy.url, 10.0))
        assert isinstance(error, UnexpectedResponse) and error.status == 502
        assert proxy.count("POST") == 1
    with scripted_server(Reply(200, b"late", delay_s=1.0)) as slow:
        assert isinstance(asyncio.run(run(slow.url, 0.2)), ResponseLost)
        assert slow.count("POST") == 1
