"""Request ids: honour a sane `X-Request-Id`, else make one; echo it on every response."""

from __future__ import annotations

import re
import uuid

from starlette.types import ASGIApp, Message, Receive, Scope, Send

HEADER = b"x-request-id"
_SAFE = re.compile(rb"^[A-Za-z0-9._:-]{1,128}$")


def request_id_of(scope: Scope) -> str:
    return str(scope.get("state", {}).get("request_id", ""))


def assign_request_id(scope: Scope) -> str:
    """The request's id (the client's `X-Request-Id` when sane, else a new one), kept in
    the scope's state for `request_id_of`."""
    given = next((v for k, v in scope["headers"] if k == HEADER), None)
    request_id = given.decode() if given and _SAFE.match(given) else str(uuid.uuid4())
    scope.setdefault("state", {})["request_id"] = request_id
    return request_id


class RequestIdMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        encoded = assign_request_id(scope).encode()

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k != HEADER]
                headers.append((HEADER, encoded))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_id)
