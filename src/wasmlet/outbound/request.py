"""A guest's outbound request, checked before anything leaves the server.

The request head is JSON, as the guest wrote it for `http_request`:

    {"method": "POST", "url": "https://api.example.com/v1/send",
     "headers": {"content-type": "application/json"}}

`headers` may also be a list of `[name, value]` pairs (to send a name twice), and an
optional `timeout_ms` ends the request sooner than the function's deadline (for a
`fetch` with an abort signal): then the guest gets `timeout` and goes on. The body
travels beside it as raw bytes. Everything here is refused with `invalid_request`
unless it is on an allow-list: the method, the scheme, the header names.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from enum import StrEnum

import httpx

from wasmlet.outbound.allowlist import DEFAULT_PORTS, normalise_host

METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
MAX_HEADERS = 64
MAX_HEADER_BYTES = 64 << 10
MAX_URL_LENGTH = 8192
MAX_TIMEOUT_MS = 86_400_000
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]{1,256}")
_HOST_OWNED = frozenset(
    {
        "host", "content-length", "transfer-encoding", "connection", "keep-alive", "upgrade",
        "te", "trailer", "proxy-connection", "proxy-authorization", "expect",
    }
)  # fmt: skip


class OutboundErrorType(StrEnum):
    INVALID_REQUEST = "invalid_request"
    FORBIDDEN_HOST = "forbidden_host"
    CONNECT_FAILED = "connect_failed"
    TIMEOUT = "timeout"
    TOO_LARGE = "too_large"


TRANSIENT = frozenset({OutboundErrorType.CONNECT_FAILED, OutboundErrorType.TIMEOUT})
"""The spec's "host function transient errors": a function that fails after one of
these (its last host call) is retried; after forbidden_host, too_large or
invalid_request it is not, since trying again cannot help."""


class OutboundError(Exception):
    """A failure the guest sees; `function_deadline` marks a timeout that is the
    function's own deadline (the worker then ends the invocation as a timeout)."""

    def __init__(
        self, error_type: OutboundErrorType, message: str, *, function_deadline: bool = False
    ) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.message = message
        self.function_deadline = function_deadline

    def to_json(self) -> bytes:
        error: dict[str, object] = {"type": str(self.error_type), "message": self.message}
        if self.function_deadline:
            error["function_deadline"] = True
        return json.dumps({"error": error}).encode()


@dataclass(frozen=True, slots=True)
class OutboundRequest:
    method: str
    url: httpx.URL
    headers: list[tuple[bytes, bytes]]
    body: bytes
    timeout_s: float | None = None

    @property
    def scheme(self) -> str:
        return self.url.scheme

    @property
    def host(self) -> str:
        return normalise_host(self.url.raw_host.decode("ascii"))

    @property
    def port(self) -> int:
        return self.url.port or DEFAULT_PORTS[self.url.scheme]

    @property
    def origin(self) -> str:
        """scheme://host:port: what logs and messages show (no path, query or user)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"


def parse_request(head: str, body: bytes, *, max_body: int) -> OutboundRequest:
    try:
        data = json.loads(head)
    except json.JSONDecodeError:
        raise _invalid("the request is not JSON") from None
    if not isinstance(data, dict) or set(data) - {"method", "url", "headers", "timeout_ms"}:
        raise _invalid(
            'the request must be an object with "method", "url", "headers" and "timeout_ms"'
        )
    method = data.get("method", "GET")
    if not isinstance(method, str) or method.upper() not in METHODS:
        raise _invalid(f"method must be one of {', '.join(sorted(METHODS))}")
    url = _url(data.get("url"))
    if len(body) > max_body:
        raise OutboundError(
            OutboundErrorType.TOO_LARGE, f"the request body is over {max_body} bytes"
        )
    timeout_ms = data.get("timeout_ms")
    if timeout_ms is not None and (
        type(timeout_ms) is not int or not 1 <= timeout_ms <= MAX_TIMEOUT_MS
    ):
        raise _invalid(f"timeout_ms must be an integer from 1 to {MAX_TIMEOUT_MS}")
    headers = _headers(data.get("headers", {}))
    timeout_s = None if timeout_ms is None else timeout_ms / 1000
    return OutboundRequest(method.upper(), url, headers, body, timeout_s)


def _url(raw: object) -> httpx.URL:
    if not isinstance(raw, str) or not raw or len(raw) > MAX_URL_LENGTH:
        raise _invalid(f"url must be a string of 1 to {MAX_URL_LENGTH} characters")
    try:
        url = httpx.URL(raw)
    except (httpx.InvalidURL, ValueError, TypeError):
        raise _invalid("url is not a valid URL") from None
    if url.scheme not in DEFAULT_PORTS or not url.raw_host:
        raise _invalid("url must be an absolute http:// or https:// URL")
    if url.userinfo:
        raise _invalid("url must not hold a user or password: send an authorization header")
    if url.port == 0:
        raise _invalid("url has port 0")
    return url.copy_with(fragment=None)


def _headers(raw: object) -> list[tuple[bytes, bytes]]:
    pairs: list[object]
    if isinstance(raw, dict):
        pairs = [[name, value] for name, value in raw.items()]
    elif isinstance(raw, list):
        pairs = raw
    else:
        raise _invalid("headers must be an object or a list of [name, value] pairs")
    if len(pairs) > MAX_HEADERS:
        raise _invalid(f"more than {MAX_HEADERS} headers")
    headers: list[tuple[bytes, bytes]] = []
    size = 0
    for pair in pairs:
        if not (
            isinstance(pair, list) and len(pair) == 2 and all(isinstance(p, str) for p in pair)
        ):
            raise _invalid("each header must be a [name, value] pair of strings")
        name, value = pair
        if not _TOKEN.fullmatch(name):
            raise _invalid("a header name is not an HTTP token")
        if name.lower() in _HOST_OWNED:
            raise _invalid(f"header {name.lower()} is set by the host")
        if any(ch in value for ch in "\r\n\0") or not _latin1(value):
            raise _invalid(f"header {name.lower()} has a value with CR, LF, NUL or non-Latin-1")
        size += len(name) + len(value)
        headers.append((name.lower().encode(), value.encode("latin-1")))
    if size > MAX_HEADER_BYTES:
        raise _invalid(f"headers are over {MAX_HEADER_BYTES} bytes")
    return headers


def _latin1(value: str) -> bool:
    try:
        value.encode("latin-1")
    except UnicodeEncodeError:
        return False
    return True


def _invalid(message: str) -> OutboundError:
    return OutboundError(OutboundErrorType.INVALID_REQUEST, message)
