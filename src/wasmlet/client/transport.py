"""Turning HTTP responses into results or typed errors."""

from __future__ import annotations

import httpx

from wasmlet.errors import FunctionError, error_class_for_type


class ConnectionFailed(Exception):
    """The server could not be reached."""


def raise_for_error(response: httpx.Response) -> None:
    if response.status_code < 400:
        return
    raise error_from_response(response)


def error_from_response(response: httpx.Response) -> FunctionError:
    error_type, message, function = "", response.text[:500], None
    try:
        body = response.json()
        detail = body["error"]
        error_type, message, function = detail["type"], detail["message"], detail.get("function")
    except (ValueError, KeyError, TypeError):
        pass
    cls = error_class_for_type(error_type)
    retry_after = response.headers.get("retry-after")
    return cls(
        message,
        function=function,
        retry_after=int(retry_after) if retry_after and retry_after.isdigit() else None,
        request_id=response.headers.get("x-request-id"),
    )


def retry_after_of(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    return float(value) if value and value.isdigit() else None
