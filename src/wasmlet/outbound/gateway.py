"""Answers guests' `http_request` host calls in the server process.

For each call: parse and check the request (`request`), find the allow-list entry
that allows its origin (`allowlist`; none: `forbidden_host`), wait for an in-flight
slot (`slots`), then send it on a pooled connection whose backend resolves the host
and connects only to checked addresses (`network`). Everything runs under the
function's deadline; the response body is read up to a cap. Every outcome is counted
(`functions_http_requests_total{name, host, outcome}`, `host` being the allow-list
entry) and logged with the origin only: no path, query, header or body, which may
carry secrets.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass

import httpcore
import httpx

from wasmlet.outbound.allowlist import HostRule, allow_list
from wasmlet.outbound.network import CheckedBackend, ForbiddenAddress
from wasmlet.outbound.request import (
    OutboundError,
    OutboundErrorType,
    OutboundRequest,
    parse_request,
)
from wasmlet.outbound.slots import Slots
from wasmlet.runtime.outcome import HostCall
from wasmlet.runtime.wire import pack_http_reply
from wasmlet.telemetry.logs import get_logger
from wasmlet.telemetry.metrics import Metrics

NO_ENTRY = "-"
KEEPALIVE_EXPIRY_S = 30.0


@dataclass(frozen=True, slots=True)
class OutboundLimits:
    max_in_flight: int
    max_in_flight_per_function: int
    max_request_bytes: int
    max_response_bytes: int


class OutboundGateway:
    def __init__(self, limits: OutboundLimits, metrics: Metrics) -> None:
        self.limits = limits
        self._metrics = metrics
        self._slots = Slots(limits.max_in_flight, limits.max_in_flight_per_function)
        self._public = _pool(limits, public_only=True)
        self._named = _pool(limits, public_only=False)
        self._log = get_logger("http_request")

    async def handle(self, call: HostCall) -> bytes:
        started = time.perf_counter()
        entry, origin, method, status = NO_ENTRY, "", "", 0
        try:
            request = parse_request(call.text, call.body, max_body=self.limits.max_request_bytes)
            origin, method = request.origin, request.method
            rule = allow_list(call.allowed_hosts).match(request.scheme, request.host, request.port)
            if rule is None:
                raise OutboundError(
                    OutboundErrorType.FORBIDDEN_HOST, f"{origin} is not in allowed_hosts"
                )
            entry = rule.text
            head, body = await self._send(call, request, rule)
            status = int(json.loads(head)["status"])
        except OutboundError as exc:
            self._record(call, entry, str(exc.error_type), started, origin, method, exc.message)
            return pack_http_reply(exc.to_json(), b"")
        self._record(call, entry, "ok", started, origin, method, None, status)
        return pack_http_reply(head, body)

    async def _send(
        self, call: HostCall, request: OutboundRequest, rule: HostRule
    ) -> tuple[bytes, bytes]:
        origin = request.origin
        deadline = call.deadline
        if request.timeout_s is not None:
            deadline = min(deadline, time.monotonic() + request.timeout_s)
        function_deadline = deadline == call.deadline
        if not await self._slots.acquire(call.function, deadline - time.monotonic()):
            raise OutboundError(
                OutboundErrorType.TIMEOUT,
                "no outbound request slot was free in time",
                function_deadline=function_deadline,
            )
        self._metrics.http_in_flight.inc()
        try:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError
            pool = self._named if rule.names_host else self._public
            async with asyncio.timeout(remaining):
                return await self._exchange(pool, request, remaining)
        except (TimeoutError, httpcore.TimeoutException):
            whose = "the function's deadline" if function_deadline else "its timeout_ms"
            raise OutboundError(
                OutboundErrorType.TIMEOUT,
                f"{origin} did not answer before {whose}",
                function_deadline=function_deadline,
            ) from None
        except ForbiddenAddress as exc:
            raise OutboundError(
                OutboundErrorType.FORBIDDEN_HOST,
                f"{origin}: {request.host} resolves to {exc.address}, which is not a public "
                "address; an allowed_hosts entry must name the host to allow it",
            ) from None
        except httpcore.ConnectError as exc:
            raise OutboundError(
                OutboundErrorType.CONNECT_FAILED, f"cannot connect to {origin}: {exc}"
            ) from None
        except (httpcore.NetworkError, httpcore.ProtocolError) as exc:
            raise OutboundError(
                OutboundErrorType.CONNECT_FAILED,
                f"connection to {origin} failed: {type(exc).__name__}: {exc}",
            ) from None
        finally:
            self._metrics.http_in_flight.dec()
            self._slots.release(call.function)

    async def _exchange(
        self, pool: httpcore.AsyncConnectionPool, request: OutboundRequest, remaining: float
    ) -> tuple[bytes, bytes]:
        built = httpx.Request(
            request.method, request.url, headers=request.headers, content=request.body
        )
        url = built.url
        target = httpcore.URL(
            scheme=url.raw_scheme, host=url.raw_host, port=url.port, target=url.raw_path
        )
        timeouts = dict.fromkeys(("connect", "read", "write", "pool"), remaining)
        cap = self.limits.max_response_bytes
        async with pool.stream(
            request.method.encode(),
            target,
            headers=built.headers.raw,
            content=request.body,
            extensions={"timeout": timeouts},
        ) as response:
            declared = _content_length(response.headers)
            if declared is not None and declared > cap:
                raise _too_large(request.origin, cap)
            chunks, size = [], 0
            async for chunk in response.aiter_stream():
                size += len(chunk)
                if size > cap:
                    raise _too_large(request.origin, cap)
                chunks.append(chunk)
            headers = [
                [name.decode("latin-1").lower(), value.decode("latin-1")]
                for name, value in response.headers
            ]
        body = b"".join(chunks)
        head = {"status": response.status, "body_length": len(body), "headers": headers}
        return json.dumps(head, separators=(",", ":")).encode(), body

    def _record(
        self,
        call: HostCall,
        entry: str,
        outcome: str,
        started: float,
        origin: str,
        method: str,
        error: str | None,
        status: int = 0,
    ) -> None:
        duration_s = time.perf_counter() - started
        self._metrics.http_requests.labels(call.function, entry, outcome).inc()
        self._metrics.http_duration.labels(call.function).observe(duration_s)
        fields = {
            "function": call.function,
            "request_id": call.invocation_id,
            "method": method,
            "origin": origin,
            "allowed_by": entry if entry != NO_ENTRY else None,
            "outcome": outcome,
            "duration_ms": round(duration_s * 1000, 3),
        }
        if error is None:
            self._log.info("outbound request", status=status, error=None, **fields)
        else:
            self._log.warning("outbound request failed", error=error, **fields)

    async def aclose(self) -> None:
        await self._public.aclose()
        await self._named.aclose()


def _pool(limits: OutboundLimits, *, public_only: bool) -> httpcore.AsyncConnectionPool:
    return httpcore.AsyncConnectionPool(
        ssl_context=httpx.create_ssl_context(),
        max_connections=limits.max_in_flight,
        max_keepalive_connections=limits.max_in_flight,
        keepalive_expiry=KEEPALIVE_EXPIRY_S,
        network_backend=CheckedBackend(public_only=public_only),
    )


def _content_length(headers: list[tuple[bytes, bytes]]) -> int | None:
    for name, value in headers:
        if name.lower() == b"content-length" and value.strip().isdigit():
            return int(value)
    return None


def _too_large(origin: str, cap: int) -> OutboundError:
    return OutboundError(
        OutboundErrorType.TOO_LARGE, f"the response from {origin} is over {cap} bytes"
    )
