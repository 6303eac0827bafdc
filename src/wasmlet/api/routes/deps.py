"""Shared helpers for route handlers."""

from __future__ import annotations

from starlette.requests import Request

from wasmlet.api.services import Services
from wasmlet.errors import PayloadTooLarge


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
