"""Asynchronous invocations and the dead letter queue."""

from __future__ import annotations

import base64
import json
from typing import Any

from fastapi import APIRouter, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from wasmlet.api.auth import may_invoke, require_service_key
from wasmlet.api.openapi import errors
from wasmlet.api.routes.deps import services_of
from wasmlet.errors import NotFound, Unauthorized
from wasmlet.triggers.queue import DeadLetterFilter, JobStatus

router = APIRouter()


def _body(raw: bytes | memoryview | None) -> dict[str, Any] | None:
    if raw is None:
        return None
    data = bytes(raw)
    try:
        return {"text": data.decode("utf-8"), "base64": None}
    except UnicodeDecodeError:
        return {"text": None, "base64": base64.b64encode(data).decode()}


def _entry(row: dict[str, Any], *, with_payload: bool) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "id": row["id"],
        "function": row["function_name"],
        "version": row.get("function_version"),
        "trigger": row["trigger_kind"],
        "attempts": row["attempts"],
        "reason": row.get("dead_reason"),
        "error": {"type": row["last_error_type"], "message": row["last_error"]}
        if row.get("last_error_type")
        else None,
        "created_at": row["created_at"],
        "first_failed_at": row.get("first_failed_at"),
        "last_failed_at": row.get("last_failed_at"),
    }
    if with_payload:
        entry["payload"] = _body(row["payload"])
    return entry


@router.get(
    "/functions/v1/invocations/{invocation_id}", tags=["invoke"], responses=errors(401, 404)
)
async def get_invocation(request: Request, invocation_id: str) -> dict[str, Any]:
    """State and outcome of an asynchronous invocation (or a database event's delivery)."""
    services = services_of(request)
    if not may_invoke(request, services.keys):
        raise Unauthorized("Missing or invalid API key")
    row = await run_in_threadpool(services.queue.get, invocation_id)
    if row is None:
        raise NotFound(f"No invocation {invocation_id}")
    view = _entry(row, with_payload=False)
    view["request_id"] = _meta_field(row["request_meta"], "request_id")
    view["user_id"] = _meta_field(row["request_meta"], "user_id")
    view["status"] = row["status"]
    view["finished_at"] = row["finished_at"]
    done = row["status"] == JobStatus.DONE
    view["result"] = (
        {"status": row["result_status"], "body": _body(row["result_body"])} if done else None
    )
    return view


def _meta_field(meta: str | None, field: str) -> str | None:
    """The caller's request id, or the verified user, of an asynchronous HTTP call (None
    for other triggers)."""
    if not meta:
        return None
    value = json.loads(meta).get(field)
    return str(value) if value else None


def _filter(function: str | None, error_type: str | None, job_id: str | None = None) -> Any:
    return DeadLetterFilter(id=job_id, function=function, error_type=error_type)


@router.get("/functions/v1/dlq", tags=["dead letters"], responses=errors(400, 401))
async def list_dead_letters(
    request: Request,
    function: str | None = None,
    error_type: str | None = None,
    limit: int = Query(100, ge=1, le=1000),
    offset: int = Query(0, ge=0, le=2**62),
) -> dict[str, Any]:
    services = services_of(request)
    require_service_key(request, services.keys)
    rows, total = await run_in_threadpool(
        services.queue.dead_letters, _filter(function, error_type), limit=limit, offset=offset
    )
    return {"entries": [_entry(row, with_payload=False) for row in rows], "total": total}


@router.post("/functions/v1/dlq/retry", tags=["dead letters"], responses=errors(401))
async def retry_dead_letters(
    request: Request, function: str | None = None, error_type: str | None = None
) -> dict[str, int]:
    """Send matching dead letters back to the queue with a fresh retry budget."""
    services = services_of(request)
    require_service_key(request, services.keys)
    count = await run_in_threadpool(services.queue.redrive, _filter(function, error_type))
    services.dispatcher.wake()
    return {"requeued": count}


@router.delete("/functions/v1/dlq", tags=["dead letters"], responses=errors(401))
async def purge_dead_letters(
    request: Request, function: str | None = None, error_type: str | None = None
) -> dict[str, int]:
    services = services_of(request)
    require_service_key(request, services.keys)
    return {"purged": await run_in_threadpool(services.queue.purge, _filter(function, error_type))}


async def _dead_row(request: Request, entry_id: str) -> dict[str, Any]:
    services = services_of(request)
    require_service_key(request, services.keys)
    row = await run_in_threadpool(services.queue.get, entry_id)
    if row is None or row["status"] != JobStatus.DEAD:
        raise NotFound(f"No dead letter {entry_id}")
    return row


@router.get("/functions/v1/dlq/{entry_id}", tags=["dead letters"], responses=errors(401, 404))
async def get_dead_letter(request: Request, entry_id: str) -> dict[str, Any]:
    return _entry(await _dead_row(request, entry_id), with_payload=True)


@router.post(
    "/functions/v1/dlq/{entry_id}/retry", tags=["dead letters"], responses=errors(401, 404)
)
async def retry_dead_letter(request: Request, entry_id: str) -> dict[str, int]:
    await _dead_row(request, entry_id)
    services = services_of(request)
    count = await run_in_threadpool(services.queue.redrive, _filter(None, None, entry_id))
    services.dispatcher.wake()
    return {"requeued": count}


@router.delete(
    "/functions/v1/dlq/{entry_id}",
    status_code=204,
    tags=["dead letters"],
    responses=errors(401, 404),
)
async def delete_dead_letter(request: Request, entry_id: str) -> Response:
    await _dead_row(request, entry_id)
    services = services_of(request)
    await run_in_threadpool(services.queue.purge, _filter(None, None, entry_id))
    return Response(status_code=204)
