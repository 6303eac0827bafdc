"""Synchronous invocation: the spec's route and the Supabase-compatible one.

The hot path is served by `api.invoke_door.WasmletApp`, before FastAPI and its
middleware. Requests it leaves to FastAPI (a reserved name's 405 or 404) reach plain
Starlette routes (`FAST_*`), mounted before the FastAPI ones. `router` holds the same
operations for the OpenAPI schema; they are never matched first, but answer the same
way if they were.
"""

from __future__ import annotations

import json
import uuid
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.routing import Match, Route

from wasmlet.api.auth import may_invoke
from wasmlet.api.openapi import FUNCTION_OUTCOMES, errors
from wasmlet.api.request_id import request_id_of
from wasmlet.api.routes.deps import read_body, services_of
from wasmlet.api.users import guest_headers, identify
from wasmlet.errors import (
    FunctionError,
    FunctionNotFound,
    InvalidPayload,
    MethodNotAllowed,
    Problem,
    Unauthorized,
)
from wasmlet.invocation.invoker import InvocationRequest
from wasmlet.registry.models import FunctionRecord
from wasmlet.registry.names import RESERVED_NAMES
from wasmlet.triggers.queue import HTTP_ASYNC, NewJob
from wasmlet.validation import json_problem

router = APIRouter(tags=["invoke"])
ALL_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD"]

_INVOKE_RESPONSES: dict[int | str, dict[str, Any]] = {
    **errors(400, 401, 404, 413, 429, *FUNCTION_OUTCOMES, function_outcomes=True),
    200: {
        "description": "The function's stdout, with the status and headers it set "
        "(the media type is its own)",
        "content": {"*/*": {"schema": {}}},
    },
    202: {"description": "Asynchronous (`Prefer: respond-async` or `?async=1`): queued"},
}
_ASYNC_PARAMETERS = [
    {
        "name": "Prefer",
        "in": "header",
        "required": False,
        "description": "`respond-async`: queue the invocation and answer 202",
        "schema": {"type": "string"},
    },
    {
        "name": "async",
        "in": "query",
        "required": False,
        "description": "`1`, `true` or `yes`: the same as `Prefer: respond-async`",
        "schema": {"type": "string"},
    },
]
_PAYLOAD = {
    "required": False,
    "description": "The function's stdin",
    "content": {
        "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
        "application/json": {"schema": {}},
        "text/plain": {"schema": {"type": "string"}},
    },
}
_WITH_BODY = ("POST", "PUT", "PATCH")


def _docs(method: str) -> dict[str, Any]:
    extra: dict[str, Any] = {"parameters": _ASYNC_PARAMETERS}
    if method in _WITH_BODY:
        extra["requestBody"] = _PAYLOAD
    return {"methods": [method], "openapi_extra": extra}


@router.api_route("/functions/v1/invoke/{name}", responses=_INVOKE_RESPONSES, **_docs("POST"))
async def invoke(request: Request, name: str) -> Response:
    """Invoke a function; the body is its stdin, its stdout is the response."""
    return await invoke_function(request, name, "/")


async def invoke_supabase(request: Request, name: str) -> Response:
    """Supabase-compatible invocation (supabase-js / supabase-py `functions.invoke`).

    A 405 answers a path that belongs to a management route with another method.
    """
    return await invoke_function(request, name, "/")


async def invoke_supabase_subpath(request: Request, name: str, subpath: str) -> Response:
    """The same, with a path after the function's name (the guest sees it)."""
    return await invoke_function(request, name, "/" + subpath)


for _method in ALL_METHODS:
    for _path, _endpoint in (
        ("/functions/v1/{name}", invoke_supabase),
        ("/functions/v1/{name}/{subpath:path}", invoke_supabase_subpath),
    ):
        router.add_api_route(
            _path,
            _endpoint,
            responses={**_INVOKE_RESPONSES, **errors(405)},
            operation_id=f"{_endpoint.__name__}_{_method.lower()}",
            **_docs(_method),
        )


async def _fast_invoke(request: Request) -> Response:
    params = request.path_params
    return await invoke_function(request, params["name"], "/" + params.get("subpath", ""))


FAST_INVOKE_ROUTE = Route("/functions/v1/invoke/{name}", _fast_invoke, methods=["POST"])
FAST_SUPABASE_ROUTES = [
    Route("/functions/v1/{name}", _fast_invoke, methods=ALL_METHODS),
    Route("/functions/v1/{name}/{subpath:path}", _fast_invoke, methods=ALL_METHODS),
]


async def invoke_function(request: Request, name: str, path: str) -> Response:
    """One invocation from its request: the response, or the `FunctionError` raised."""
    if name in RESERVED_NAMES:
        _refuse_reserved(request, name)
    services = services_of(request)
    record = await services.registry.lookup(name)
    try:
        if not may_invoke(request, services.keys) and not (
            record is not None and record.enabled and record.config.public
        ):
            raise Unauthorized("Missing or invalid API key")
        if record is None or not record.enabled:
            raise FunctionNotFound(f"Function not found: {name}", function=name)
        identity = await identify(
            request.headers.get("authorization"), services.keys, services.users,
            verify_jwt=record.config.verify_jwt,
        )  # fmt: skip
        payload = await read_body(request, services.settings.max_payload_bytes)
        _check_payload(record, payload)
    except FunctionError as refused:
        services.invoker.record_refusal(
            name, refused, request_id_of(request.scope), known=record is not None
        )
        raise
    headers = guest_headers(request.headers.items(), identity)
    if _wants_async(request):
        return await _enqueue(request, record, payload, path, headers, identity.user_id)
    result = await services.invoker.invoke(
        InvocationRequest(
            function=record,
            module_path=services.registry.module_path(record),
            payload=payload,
            request_id=request_id_of(request.scope),
            method=request.method,
            path=path,
            query=request.scope["query_string"].decode(),
            headers=headers,
            user_id=identity.user_id,
        )
    )
    response = Response(content=result.body, status_code=result.status)
    response.raw_headers = [
        *(h for h in response.raw_headers if h[0] != b"content-type"),
        *(
            (name.lower().encode("latin-1"), value.encode("utf-8"))
            for name, value in result.headers
        ),
    ]
    return response


def _refuse_reserved(request: Request, name: str) -> None:
    """A reserved name is never a function: the path is a management route's, with
    another method (405 and `Allow`), or nothing's (404)."""
    allowed: set[str] = set()
    for route in request.app.state.management_routes:
        if route.matches(request.scope)[0] is not Match.NONE:
            allowed.update(route.methods)
    if allowed:
        raise MethodNotAllowed(f"{request.method} is not allowed here", allow=sorted(allowed))
    raise FunctionNotFound(f"Function not found: {name}", function=name)


def _wants_async(request: Request) -> bool:
    prefer = request.headers.get("prefer", "")
    if any(part.strip().lower() == "respond-async" for part in prefer.split(",")):
        return True
    if not request.scope["query_string"]:
        return False
    return request.query_params.get("async", "").lower() in ("1", "true", "yes")


async def _enqueue(
    request: Request,
    record: FunctionRecord,
    payload: bytes,
    path: str,
    headers: dict[str, str],
    user_id: str | None,
) -> Response:
    """Asynchronous invocation: durable, retried by the function's policy, 202 at once.

    Every call gets its own invocation id; the caller's request id (`X-Request-Id`,
    which a caller may choose and reuse) is kept beside it for correlation only.
    """
    services = services_of(request)
    invocation_id = str(uuid.uuid4())
    request_id = request_id_of(request.scope)
    query = urlencode([(k, v) for k, v in request.query_params.multi_items() if k != "async"])
    meta = {
        "method": request.method, "path": path, "query": query, "headers": headers,
        "request_id": request_id, "user_id": user_id,
    }  # fmt: skip
    await run_in_threadpool(
        services.queue.enqueue,
        [NewJob(invocation_id, record.name, HTTP_ASYNC, payload, request_meta=meta)],
    )
    services.dispatcher.wake()
    location = f"/functions/v1/invocations/{invocation_id}"
    return JSONResponse(
        {
            "invocation_id": invocation_id,
            "request_id": request_id,
            "status": "queued",
            "location": location,
        },
        status_code=202,
        headers={"Location": location},
    )


def _check_payload(record: FunctionRecord, payload: bytes) -> None:
    declared = record.config.content_type
    if declared is None or not payload:
        return
    if declared == "application/json":
        try:
            json.loads(payload)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InvalidPayload(
                f"Malformed invocation payload: not valid JSON ({json_problem(exc)})",
                function=record.name,
                problems=[Problem("body", f"the body is not JSON: {json_problem(exc)}")],
            ) from exc
    elif declared == "text/plain":
        try:
            payload.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidPayload(
                "Malformed invocation payload: not UTF-8 text", function=record.name
            ) from exc
