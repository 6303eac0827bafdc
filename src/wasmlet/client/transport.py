"""Turning HTTP answers, and the lack of one, into results or errors of the one tree.

An answer with a wasmlet error body becomes that error's class (`FunctionTimeout`,
`MemoryLimitExceeded`, ...), with the body's `retriable`. Anything else at 400 or
above (a proxy's HTML 502, a 405 from a load balancer, a `type` this client does not
know) is an `UnexpectedResponse` carrying the answer's status. A failure to get any
answer is `RequestNotSent` when nothing was sent (safe to send again) and
`ResponseLost` when the request went out (it may have run).
"""

from __future__ import annotations

import re
from typing import Any

import httpx

from wasmlet.errors import (
    ConnectionFailed,
    FunctionError,
    RequestNotSent,
    ResponseLost,
    UnexpectedResponse,
    error_class_for_type,
)

__all__ = [
    "ConnectionFailed",
    "connection_failure",
    "error_from_response",
    "raise_for_error",
    "retry_after_of",
]

# Raised before any byte of the request left: httpcore retries only these itself.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
_MESSAGE_CHARS = 300
_RETRY_AFTER_DIGITS = 6  # a Retry-After longer than this is nonsense: ignored
_SPACE = re.compile(r"\s+")
_TAG = re.compile(r"<[^>]{0,200}>")


def connection_failure(exc: httpx.TransportError) -> ConnectionFailed:
    """The error for a call that got no answer."""
    if isinstance(exc, _NOT_SENT):
        return RequestNotSent(f"cannot reach the server: {exc}")
    return ResponseLost(
        f"no answer from the server ({type(exc).__name__}: {exc}); the request was sent "
        "and may have run"
    )


def raise_for_error(response: httpx.Response) -> None:
    if response.status_code < 400:
        return
    raise error_from_response(response)


def error_from_response(response: httpx.Response) -> FunctionError:
    detail = _error_detail(response)
    retry_after = _retry_after_header(response)
    request_id = response.headers.get("x-request-id")
    if detail is not None:
        error_type, message = detail["type"], detail["message"]
        retriable = detail.get("retriable")
        retriable = retriable if isinstance(retriable, bool) else None
        cls = error_class_for_type(error_type, retriable)
        if cls is not None:
            function = detail.get("function")
            error = cls(
                message,
                function=function if isinstance(function, str) else None,
                retry_after=retry_after,
                request_id=request_id,
            )
            if retriable is not None:
                error.retriable = retriable
            return error
        return UnexpectedResponse(
            f"HTTP {response.status_code} {error_type}: {message}"[:_MESSAGE_CHARS],
            status=response.status_code,
            error_type=error_type,
            retriable=bool(retriable),
            retry_after=retry_after,
            request_id=request_id,
        )
    return UnexpectedResponse(
        _describe(response),
        status=response.status_code,
        retry_after=retry_after,
        request_id=request_id,
    )


def _error_detail(response: httpx.Response) -> dict[str, Any] | None:
    """The body's `error` object when it is wasmlet's error body, else None."""
    if "json" not in response.headers.get("content-type", ""):
        return None
    try:
        body = response.json()
    except ValueError:
        return None
    detail = body.get("error") if isinstance(body, dict) else None
    if (
        isinstance(detail, dict)
        and isinstance(detail.get("type"), str)
        and isinstance(detail.get("message"), str)
    ):
        return detail
    return None


def _describe(response: httpx.Response) -> str:
    """One line about an answer that is not wasmlet's: status, reason, body's start."""
    text = _SPACE.sub(" ", _TAG.sub(" ", response.text[:4096])).strip()
    reason = response.reason_phrase or ""
    said = f": {text}" if text else ""
    return f"HTTP {response.status_code} {reason} (not a wasmlet answer){said}"[:_MESSAGE_CHARS]


def _retry_after_header(response: httpx.Response) -> int | None:
    value = response.headers.get("retry-after", "").strip()
    if value.isascii() and value.isdigit() and len(value) <= _RETRY_AFTER_DIGITS:
        return int(value)
    return None


def retry_after_of(response: httpx.Response) -> float | None:
    seconds = _retry_after_header(response)
    return None if seconds is None else float(seconds)
