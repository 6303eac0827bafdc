"""The invoke routes' own door: invocations are dispatched before FastAPI sees them.

FastAPI wraps every route, even a plain Starlette one, in its middleware stack (server
errors, telemetry, body limit, exceptions, the async exit stack, then ours: request id
and last resort); on hello-world that stack cost about a third of the server's CPU per
call. `WasmletApp` answers the invoke routes itself and hands every other request to
FastAPI unchanged. What the stack did for an invocation is done here inline, the same
way: the request id (`api.request_id`), the error body with its hint (`api.errors`), and
the last resort's bare 500 that keeps the connection.

Only paths that no management route can match come here: `POST
/functions/v1/invoke/{name}` and `/functions/v1/{name}[/{subpath}]` for a name that is
not reserved (every management path starts with a reserved name; a test checks it).
Everything else, reserved names included (their 405 with `Allow`), goes to FastAPI,
whose routes (`routes.invoke`) keep the OpenAPI schema and answer the same way.
"""

from __future__ import annotations

from collections.abc import Iterable

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute
from starlette.types import Receive, Scope, Send

from wasmlet.api.errors import error_response, log_unexpected
from wasmlet.api.request_id import HEADER as REQUEST_ID_HEADER
from wasmlet.api.request_id import assign_request_id
from wasmlet.api.routes.invoke import ALL_METHODS, invoke_function
from wasmlet.errors import FunctionError, InternalError
from wasmlet.registry.names import RESERVED_NAMES

PREFIX = "/functions/v1/"
INVOKE = "invoke"
_METHODS = frozenset(ALL_METHODS)


def invocation_target(method: str, path: str) -> tuple[str, str] | None:
    """(function name, the path the guest sees) when this door serves the request."""
    if not path.startswith(PREFIX):
        return None
    name, _, rest = path[len(PREFIX) :].partition("/")
    if not name:
        return None
    if name == INVOKE:
        if method == "POST" and rest and "/" not in rest:
            return rest, "/"
        return None
    if name in RESERVED_NAMES or method not in _METHODS:
        return None
    return name, "/" + rest


def check_door_leaves(routes: Iterable[BaseRoute]) -> None:
    """RuntimeError when a management route's path could be taken for an invocation."""
    for route in routes:
        path = getattr(route, "path", "")
        if path.startswith(PREFIX) and path[len(PREFIX) :].partition("/")[0] not in RESERVED_NAMES:
            raise RuntimeError(
                f"{path} does not start with a reserved name: the invoke door takes it"
            )


class WasmletApp(FastAPI):
    """FastAPI, with the invoke routes served before its middleware stack."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not scope.get("root_path"):
            target = invocation_target(scope["method"], scope["path"])
            if target is not None:
                await self._invoke(scope, receive, send, *target)
                return
        await super().__call__(scope, receive, send)

    async def _invoke(
        self, scope: Scope, receive: Receive, send: Send, name: str, path: str
    ) -> None:
        scope["app"] = self
        request_id = assign_request_id(scope)
        started = False
        try:
            try:
                response = await invoke_function(Request(scope, receive), name, path)
            except FunctionError as refused:
                response = error_response(refused, request_id, invocation=True)
            started = True
            await _send(response, request_id, send)
        except Exception as exc:
            log_unexpected(exc, scope, request_id, response_started=started)
            if started:
                raise
            await _send(error_response(InternalError(), request_id), request_id, send)


async def _send(response: Response, request_id: str, send: Send) -> None:
    """The response, with the request id as the last header (as `RequestIdMiddleware`)."""
    headers = [h for h in response.raw_headers if h[0] != REQUEST_ID_HEADER]
    headers.append((REQUEST_ID_HEADER, request_id.encode()))
    await send({"type": "http.response.start", "status": response.status_code, "headers": headers})
    await send({"type": "http.response.body", "body": response.body})
