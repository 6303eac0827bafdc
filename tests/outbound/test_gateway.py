"""The outbound gateway in-process, against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.server import free_port
from tests.support.upstream import HELLO, Upstream, running_upstream
from wasmlet.outbound.gateway import OutboundGateway, OutboundLimits
from wasmlet.outbound.network import CheckedBackend, ForbiddenAddress
from wasmlet.runtime.outcome import HostCall
from wasmlet.runtime.wire import unpack_http_reply
from wasmlet.telemetry.metrics import Metrics

LIMITS = OutboundLimits(
    max_in_flight=8, max_in_flight_per_function=2, max_request_bytes=1024,
    max_response_bytes=4096,
)  # fmt: skip


@pytest.fixture(scope="module")
def upstream() -> Iterator[Upstream]:
    with running_upstream() as server:
        yield server


def call(
    request: dict[str, Any], allowed: tuple[str, ...], body: bytes = b"", within_s: float = 10
) -> tuple[dict[str, Any], bytes, Metrics]:
    metrics = Metrics()

    async def run() -> bytes:
        gateway = OutboundGateway(LIMITS, metrics)
        try:
            host_call = HostCall(
                "http_request", "inv-1", "fn", json.dumps(request), [],
                time.monotonic() + within_s, body, allowed,
            )  # fmt: skip
            return await gateway.handle(host_call)
        finally:
            await gateway.aclose()

    head, response_body = unpack_http_reply(asyncio.run(run()))
    return json.loads(head), response_body, metrics


def requests_counted(metrics: Metrics, host: str, outcome: str) -> float | None:
    labels = {"name": "fn", "host": host, "outcome": outcome}
    return metrics.registry.get_sample_value("functions_http_requests_total", labels)


def error_type(head: dict[str, Any]) -> str:
    assert "error" in head, head
    kind: str = head["error"]["type"]
    return kind


def test_an_allowed_origin_answers_with_status_headers_and_body(upstream: Upstream) -> None:
    head, body, metrics = call(
        {"url": upstream.url("/hello")}, (f"http://127.0.0.1:{upstream.port}",)
    )
    assert head["status"] == 200 and body == HELLO
    assert head["body_length"] == len(HELLO)
    assert ["x-upstream", "yes"] in head["headers"]
    assert requests_counted(metrics, f"http://127.0.0.1:{upstream.port}", "ok") == 1


def test_method_headers_and_body_reach_the_upstream(upstream: Upstream) -> None:
    request = {
        "method": "put",
        "url": upstream.url("/echo?q=1"),
        "headers": [["x-a", "1"], ["x-a", "2"], ["Content-Type", "text/plain"]],
    }
    head, body, _ = call(request, (f"http://127.0.0.1:{upstream.port}",), b"hi")
    assert head["status"] == 201
    seen = json.loads(body)
    assert seen["method"] == "PUT" and seen["body"] == "hi" and seen["path"] == "/echo"
    assert seen["headers"]["content-type"] == "text/plain"


def test_no_entry_means_forbidden_host(upstream: Upstream) -> None:
    head, body, metrics = call({"url": upstream.url("/never")}, ())
    assert error_type(head) == "forbidden_host" and body == b""
    assert requests_counted(metrics, "-", "forbidden_host") == 1
    other_port = (f"http://127.0.0.1:{upstream.port + 1}", f"https://127.0.0.1:{upstream.port}")
    assert error_type(call({"url": upstream.url("/never")}, other_port)[0]) == "forbidden_host"
    assert all(seen["path"] != "/never" for seen in upstream.requests)


@pytest.mark.parametrize(
    "url",
    [
        "http://10.0.0.1/",
        "http://169.254.169.254/latest/meta-data/",
        "http://127.0.0.1:{port}/hello",
        "http://localhost:{port}/hello",
        "http://[::ffff:127.0.0.1]:{port}/hello",
        "http://2130706433:{port}/hello",
        "http://0.0.0.0:{port}/hello",
    ],
)
def test_non_public_addresses_are_refused_under_a_wildcard(upstream: Upstream, url: str) -> None:
    head, _, _ = call({"url": url.format(port=upstream.port)}, ("http://*:*",))
    assert error_type(head) == "forbidden_host"
    assert "not a public address" in head["error"]["message"]


def test_a_name_resolving_to_loopback_is_reached_when_an_entry_names_it(
    upstream: Upstream,
) -> None:
    head, body, _ = call(
        {"url": upstream.url("/hello", host="localhost")}, (f"http://localhost:{upstream.port}",)
    )
    assert head["status"] == 200 and body == HELLO


@pytest.mark.parametrize("address", ["10.0.0.1", "169.254.169.254"])
def test_a_listed_private_address_is_not_refused(address: str) -> None:
    head, _, _ = call({"url": f"http://{address}:9/"}, (f"http://{address}:9",), within_s=0.5)
    # Whatever the network does with it (nothing, a refusal, an answer), it was tried.
    assert head.get("error", {}).get("type") != "forbidden_host"


def test_an_upstream_that_is_down_is_connect_failed() -> None:
    port = free_port()
    head, _, _ = call({"url": f"http://127.0.0.1:{port}/"}, (f"http://127.0.0.1:{port}",))
    assert error_type(head) == "connect_failed"
    assert f"127.0.0.1:{port}" in head["error"]["message"]


def test_a_slow_upstream_is_cut_at_the_deadline(upstream: Upstream) -> None:
    started = time.monotonic()
    head, _, _ = call(
        {"url": upstream.url("/slow")}, (f"http://127.0.0.1:{upstream.port}",), within_s=0.5
    )
    assert error_type(head) == "timeout" and head["error"]["function_deadline"] is True
    assert time.monotonic() - started < 10  # a bound against a hang, not a speed test


def test_a_request_timeout_shorter_than_the_deadline_leaves_the_function_running(
    upstream: Upstream,
) -> None:
    head, _, _ = call(
        {"url": upstream.url("/slow"), "timeout_ms": 200},
        (f"http://127.0.0.1:{upstream.port}",),
        within_s=30,
    )
    assert error_type(head) == "timeout" and "function_deadline" not in head["error"]
    assert "timeout_ms" in head["error"]["message"]


def test_the_response_and_the_request_body_are_capped(upstream: Upstream) -> None:
    allowed = (f"http://127.0.0.1:{upstream.port}",)
    head, body, _ = call({"url": upstream.url("/big?n=4096")}, allowed)
    assert head["status"] == 200 and len(body) == 4096
    assert error_type(call({"url": upstream.url("/big?n=4097")}, allowed)[0]) == "too_large"
    too_big = call({"method": "POST", "url": upstream.url("/echo")}, allowed, b"x" * 1025)[0]
    assert error_type(too_big) == "too_large"


@pytest.mark.parametrize(
    "request_head",
    [
        {"url": "ftp://127.0.0.1/"},
        {"url": "http://user:pw@127.0.0.1/"},
        {"url": "/relative"},
        {"method": "CONNECT", "url": "http://127.0.0.1/"},
        {"url": "http://127.0.0.1/", "headers": {"host": "internal"}},
        {"url": "http://127.0.0.1/", "headers": {"x": "a\r\nb: c"}},
        {"url": "http://127.0.0.1/", "body": "not a field"},
        {"url": "http://127.0.0.1/", "timeout_ms": 0},
        {"url": "http://127.0.0.1/", "timeout_ms": True},
    ],
)
def test_malformed_requests_are_invalid_request(request_head: dict[str, Any]) -> None:
    head, _, _ = call(request_head, ("*://*:*",))
    assert error_type(head) == "invalid_request"


def test_the_per_function_cap_makes_a_third_request_wait_for_a_slot(upstream: Upstream) -> None:
    allowed = (f"http://127.0.0.1:{upstream.port}",)

    async def run() -> list[dict[str, Any]]:
        gateway = OutboundGateway(LIMITS, Metrics())

        def host_call(path: str, within_s: float) -> HostCall:
            request = json.dumps({"url": upstream.url(path)})
            deadline = time.monotonic() + within_s
            return HostCall("http_request", "i", "fn", request, [], deadline, b"", allowed)

        try:
            replies = await asyncio.gather(
                gateway.handle(host_call("/slow", 1.0)),
                gateway.handle(host_call("/slow", 1.0)),
                gateway.handle(host_call("/hello", 0.3)),
            )
        finally:
            await gateway.aclose()
        return [json.loads(unpack_http_reply(reply)[0]) for reply in replies]

    *_, third = asyncio.run(run())
    assert third["error"]["type"] == "timeout"
    assert "slot" in third["error"]["message"]


def test_the_backend_connects_to_the_address_it_checked(
    upstream: Upstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No second lookup: a name only our resolver knows is reached at its checked address,
    and the strict backend refuses it before connecting."""
    real = asyncio.BaseEventLoop.getaddrinfo
    lookups: list[str] = []

    async def resolver(self: asyncio.AbstractEventLoop, host: str, *args: Any, **kw: Any) -> Any:
        lookups.append(host)
        if host == "rebind.invalid":
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", args[0]))]
        return await real(self, host, *args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(asyncio.BaseEventLoop, "getaddrinfo", resolver)

    async def connect(public_only: bool) -> bytes:
        backend = CheckedBackend(public_only=public_only)
        stream = await backend.connect_tcp("rebind.invalid", upstream.port, timeout=5)
        try:
            await stream.write(b"GET /hello HTTP/1.1\r\nhost: rebind.invalid\r\n\r\n")
            return await stream.read(4096)
        finally:
            await stream.aclose()

    assert b"x-upstream: yes" in asyncio.run(connect(public_only=False))
    assert lookups == ["rebind.invalid"]
    with pytest.raises(ForbiddenAddress):
        asyncio.run(connect(public_only=True))


def test_a_pooled_connection_to_a_named_host_is_not_reused_under_a_wildcard(
    upstream: Upstream,
) -> None:
    """Function a names localhost; its kept-alive connection must not serve function b,
    whose wildcard entry does not allow loopback."""
    url = json.dumps({"url": upstream.url("/hello", host="localhost")})

    async def run() -> list[dict[str, Any]]:
        gateway = OutboundGateway(LIMITS, Metrics())
        deadline = time.monotonic() + 10
        named = (f"http://localhost:{upstream.port}",)
        try:
            first = await gateway.handle(
                HostCall("http_request", "1", "a", url, [], deadline, b"", named)
            )
            second = await gateway.handle(
                HostCall("http_request", "2", "b", url, [], deadline, b"", ("http://*:*",))
            )
        finally:
            await gateway.aclose()
        return [json.loads(unpack_http_reply(reply)[0]) for reply in (first, second)]

    first, second = asyncio.run(run())
    assert first["status"] == 200
    assert second["error"]["type"] == "forbidden_host"
