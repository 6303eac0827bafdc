"""Errors become responses here and nowhere else.

Route handlers raise `FunctionError` subclasses; this module renders the DESIGN.md
error body with the request id, for those and for the framework's own errors. The
last resort (`LastResortMiddleware`) answers anything else with a bare 500 on the
same keep-alive connection and sends the details to the server's log only.
"""

from __future__ import annotations

import re
import traceback
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from wasmlet.api.request_id import request_id_of
from wasmlet.errors import (
    FunctionError,
    InternalError,
    InvalidPayload,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    Unauthorized,
)
from wasmlet.telemetry.logs import get_logger
from wasmlet.validation import Loc, label_of, problems

# The routes that invoke a function: their error bodies name the command showing its logs.
INVOKE_ENDPOINTS = frozenset(
    {"invoke", "invoke_supabase", "invoke_supabase_subpath", "_fast_invoke"}
)
_PLAIN_NAME = re.compile(r"[A-Za-z0-9_-]{1,128}")


def logs_hint(function: str | None, request_id: str) -> str | None:
    """`wasmlet logs NAME --request-id ID` for an invocation of a plain-named function."""
    if function is None or not _PLAIN_NAME.fullmatch(function):
        return None
    return f"wasmlet logs {function} --request-id {request_id}"


def is_invocation(scope: Scope) -> bool:
    endpoint = scope.get("endpoint")
    return getattr(endpoint, "__name__", None) in INVOKE_ENDPOINTS


def error_body(error: FunctionError, request_id: str, invocation: bool = False) -> dict[str, Any]:
    detail: dict[str, Any] = {
        "type": error.type,
        "retriable": error.retriable,
        "message": error.message,
        "function": error.function,
        "request_id": request_id,
    }
    if error.problems:
        detail["errors"] = [problem.view() for problem in error.problems]
    hint = logs_hint(error.function, request_id) if invocation else None
    if hint is not None:
        detail["hint"] = hint
    return {"error": detail}


def error_response(error: FunctionError, request_id: str, invocation: bool = False) -> JSONResponse:
    headers = {**error.headers(), "X-Request-Id": request_id}
    body = error_body(error, request_id, invocation)
    return JSONResponse(body, status_code=error.status, headers=headers)


def _said_as(loc: Loc) -> str:
    """`minutes` for `query.minutes`: the name the user wrote, not where it was carried."""
    if not loc:
        return "the request"
    return label_of(loc[1:]) or f"the {loc[0]}"


def _http_error(request: Request, exc: StarletteHTTPException) -> FunctionError:
    status = exc.status_code
    if status == 405:
        allow = (exc.headers or {}).get("Allow", "")
        allowed = [m.strip() for m in allow.split(",") if m.strip()]
        return MethodNotAllowed(f"{request.method} is not allowed here", allow=allowed)
    if status == 404:
        return NotFound(f"No route for {request.method} {request.url.path}")
    if status == 413:
        return PayloadTooLarge()
    if status == 401:
        return Unauthorized()
    if 400 <= status < 500:
        return InvalidPayload(f"Malformed request: {exc.detail}")
    return InternalError()


def install_error_handlers(app: FastAPI) -> None:
    async def on_function_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, FunctionError)
        scope = request.scope
        return error_response(exc, request_id_of(scope), is_invocation(scope))

    async def on_validation_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        found = problems(exc.errors(), said_as=_said_as)
        return error_response(InvalidPayload(problems=found), request_id_of(request.scope))

    async def on_http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        return error_response(_http_error(request, exc), request_id_of(request.scope))

    app.add_exception_handler(FunctionError, on_function_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)


class LastResortMiddleware:
    """An exception nothing else handled: log it, answer the bare 500, keep the connection.

    Starlette's own last resort re-raises after answering, and uvicorn then closes the
    keep-alive connection (losing the client's next request on it). Only when part of a
    response is already out is re-raising (and so closing) the one honest ending left.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def send_tracked(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, send_tracked)
        except Exception as exc:
            request_id = request_id_of(scope)
            log_unexpected(exc, scope, request_id, response_started=started)
            if started:
                raise
            await error_response(InternalError(), request_id)(scope, receive, send)


def log_unexpected(
    exc: Exception, scope: Scope, request_id: str, *, response_started: bool
) -> None:
    """The log line of an exception no handler answered (call inside its `except`)."""
    get_logger("http").error(
        "unexpected error",
        error=f"500 {type(exc).__name__}: {exc}",
        error_type=InternalError.type,
        traceback=traceback.format_exc(),
        request_id=request_id,
        method=scope.get("method"),
        path=scope.get("path"),
        response_started=response_started,
    )
