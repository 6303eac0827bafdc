"""Errors become responses here and nowhere else.

Route handlers raise `FunctionError` subclasses; this module renders the DESIGN.md
error body with the request id, for those and for the framework's own errors.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from wasmlet.api.request_id import request_id_of
from wasmlet.errors import (
    ClientError,
    FunctionError,
    InternalError,
    InvalidPayload,
    NotFound,
)
from wasmlet.observability.logs import get_logger


def error_response(error: FunctionError, request_id: str) -> JSONResponse:
    body = {
        "error": {
            "type": error.type,
            "message": error.message,
            "function": error.function,
            "request_id": request_id,
        }
    }
    headers = {**error.headers(), "X-Request-Id": request_id}
    return JSONResponse(body, status_code=error.status, headers=headers)


class MethodNotAllowed(ClientError):
    """Method not allowed"""

    status = 405
    type = "method_not_allowed"


def install_error_handlers(app: FastAPI) -> None:
    log = get_logger("http")

    async def on_function_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, FunctionError)
        return error_response(exc, request_id_of(request.scope))

    async def on_validation_error(request: Request, exc: Exception) -> JSONResponse:
        return error_response(
            InvalidPayload(f"Malformed request: {exc}"), request_id_of(request.scope)
        )

    async def on_http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        error: FunctionError
        if exc.status_code == 405:
            error = MethodNotAllowed()
        elif exc.status_code == 404:
            error = NotFound(f"No route for {request.method} {request.url.path}")
        else:
            error = InternalError(str(exc.detail))
        return error_response(error, request_id_of(request.scope))

    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        request_id = request_id_of(request.scope)
        log.exception("unexpected error", error=repr(exc), request_id=request_id)
        return error_response(InternalError(), request_id)

    app.add_exception_handler(FunctionError, on_function_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(Exception, on_unexpected)
