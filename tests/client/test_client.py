"""The Python client against a real server: the spec's client retry strategy and
typed exceptions."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from tests.support.build import build_c, wat
from tests.support.server import ServerProcess, free_port
from wasmlet.client import (
    AsyncWasmletClient,
    CircuitOpen,
    ConnectionFailed,
    FunctionNotFound,
    FunctionTimeout,
    InvalidPayload,
    MemoryLimitExceeded,
    RetryPolicy,
    UserCodeError,
    WasmletClient,
)

FAST = RetryPolicy(max_attempts=3, base_delay_s=0.05, jitter=0)


def client(server: ServerProcess, retry: RetryPolicy = FAST) -> WasmletClient:
    return WasmletClient(server.url, server.service_key, retry=retry)


def invocations(server: ServerProcess, name: str, status: str) -> float:
    return server.metric("functions_invocations_total", name=name, status=status)


def test_retries_a_5xx_three_times_then_raises_its_type(server: ServerProcess, fname: str) -> None:
    server.deploy(fname, wat("trap"))
    with client(server) as c, pytest.raises(UserCodeError) as raised:
        c.invoke(fname)
    assert raised.value.status == 500 and raised.value.request_id
    assert invocations(server, fname, "500") == 3


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
        pytest.raises(ConnectionFailed),
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
