"""Synchronous invocation: the spec's route and the Supabase-compatible one.

The hot path is served by plain Starlette routes, mounted before the FastAPI ones:
FastAPI's per-request machinery cost about as much as the whole handler. `router`
holds the same operations for the OpenAPI schema; they are never matched first, but
answer the same way if they were.
"""

from __future__ import annotations

import json
import uuid
from urllib.parse import urlencode

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.routing import Route

from wasmlet.api.auth import may_invoke
from wasmlet.api.request_id import request_id_of
from wasmlet.api.routes.deps import read_body, services_of
from wasmlet.errors import FunctionError, FunctionNotFound, InvalidPayload, Unauthorized
from wasmlet.registry.models import FunctionRecord
from wasmlet.reliability.invoker import InvocationRequest
from wasmlet.triggers.queue import HTTP_ASYNC, NewJob

router = APIRouter(tags=["invoke"])
ALL_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD"]
_HIDDEN_HEADERS = frozenset({"authorization", "apikey", "cookie"})


@router.post("/functions/v1/invoke/{name}")
async def invoke(request: Request, name: str) -> Response:
    """Invoke a function; the body is its stdin, its stdout is the response."""
    return await _invoke(request, name, "/")


@router.api_route("/functions/v1/{name}", methods=ALL_METHODS)
async def invoke_supabase(request: Request, name: str) -> Response:
    """Supabase-compatible invocation (supabase-js / supabase-py `functions.invoke`)."""
    return await _invoke(request, name, "/")


@router.api_route("/functions/v1/{name}/{subpath:path}", methods=ALL_METHODS)
async def invoke_supabase_subpath(request: Request, name: str, subpath: str) -> Response:
    return await _invoke(request, name, "/" + subpath)


async def _fast_invoke(request: Request) -> Response:
    params = request.path_params
    return await _invoke(request, params["name"], "/" + params.get("subpath", ""))


FAST_INVOKE_ROUTE = Route("/functions/v1/invoke/{name}", _fast_invoke, methods=["POST"])
FAST_SUPABASE_ROUTES = [
    Route("/functions/v1/{name}", _fast_invoke, methods=ALL_METHODS),
    Route("/functions/v1/{name}/{subpath:path}", _fast_invoke, methods=ALL_METHODS),
]


async def _invoke(request: Request, name: str, path: str) -> Response:
    services = services_of(request)
    record = services.registry.find(name)
    try:
        if not may_invoke(request, services.keys) and not (
            record is not None and record.enabled and record.config.public
        ):
            raise Unauthorized("Missing or invalid API key")
        if record is None or not record.enabled:
            raise FunctionNotFound(f"Function not found: {name}", function=name)
        payload = await read_body(request, services.settings.max_payload_bytes)
        _check_payload(record, payload)
    except FunctionError as refused:
        services.invoker.record_refusal(
            name, refused, request_id_of(request.scope), known=record is not None
        )
        raise
    headers = {k: v for k, v in request.headers.items() if k.lower() not in _HIDDEN_HEADERS}
    if _wants_async(request):
        return await _enqueue(request, record, payload, path, headers)
    result = await services.invoker.invoke(
        InvocationRequest(
            function=record,
            module_path=services.registry.module_path(record),
            payload=payload,
            request_id=request_id_of(request.scope),
            method=request.method,
            path=path,
            query=request.url.query,
            headers=headers,
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


def _wants_async(request: Request) -> bool:
    prefer = request.headers.get("prefer", "")
    if any(part.strip().lower() == "respond-async" for part in prefer.split(",")):
        return True
    return request.query_params.get("async", "").lower() in ("1", "true", "yes")


async def _enqueue(
    request: Request, record: FunctionRecord, payload: bytes, path: str, headers: dict[str, str]
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
        "request_id": request_id,
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
                f"Malformed invocation payload: not valid JSON ({exc})", function=record.name
            ) from exc
    elif declared == "text/plain":
        try:
            payload.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidPayload(
                "Malformed invocation payload: not UTF-8 text", function=record.name
            ) from exc
