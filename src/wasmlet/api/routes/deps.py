"""Shared helpers for route handlers."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request

from wasmlet.api.services import Services
from wasmlet.errors import FunctionError, PayloadTooLarge, Problem
from wasmlet.validation import json_problem


def services_of(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 as soon as it passes `limit` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"Payload too large: over {limit} bytes")
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"Payload too large: over {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def parse_json(body: bytes, error: type[FunctionError], prefix: str) -> Any:
    """The JSON value of a request body; `error` with a `body` problem when it is not JSON
    (the message starts with `prefix`, e.g. "Malformed deploy request")."""
    try:
        return json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        problem = Problem("body", f"the body is not JSON: {json_problem(exc)}")
        raise error(f"{prefix}: {problem.problem}", problems=[problem]) from exc
