"""The operator's view of schedules: list, pause, resume, run now."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from wasmlet.api.auth import require_service_key
from wasmlet.api.openapi import errors
from wasmlet.api.routes.deps import services_of
from wasmlet.errors import NotFound
from wasmlet.triggers.queue import NewJob
from wasmlet.triggers.scheduler import iso
from wasmlet.triggers.schedules import SCHEDULE

router = APIRouter(tags=["schedules"])


def _view(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "function": row["function_name"],
        "id": row["schedule_id"],
        "cron": row["cron"],
        "timezone": row["timezone"],
        "catch_up": row["catch_up"],
        "paused": bool(row["paused"]),
        "last_run": iso(row["last_run"]) if row["last_run"] is not None else None,
        "next_run": iso(row["next_run"]) if row["next_run"] is not None else None,
        "last_outcome": {
            "invocation_id": row["last_job_id"],
            "status": row["last_status"],
            "error_type": row["last_error_type"],
        }
        if row["last_job_id"]
        else None,
    }


@router.get("/functions/v1/schedules", responses=errors(401))
async def list_schedules(request: Request) -> dict[str, Any]:
    services = services_of(request)
    require_service_key(request, services.keys)
    rows = await run_in_threadpool(services.schedules.listing)
    scheduler = services.scheduler
    return {
        "schedules": [_view(row) for row in rows],
        "scheduler": {"healthy": scheduler.healthy(), "heartbeat_age_s": scheduler.heartbeat_age()},
    }


async def _find(request: Request, function: str, schedule_id: str) -> dict[str, Any]:
    services = services_of(request)
    require_service_key(request, services.keys)
    rows = await run_in_threadpool(services.schedules.listing)
    for row in rows:
        if row["function_name"] == function and row["schedule_id"] == schedule_id:
            return row
    raise NotFound(f"No schedule {schedule_id} for function {function}")


@router.post("/functions/v1/schedules/{function}/{schedule_id}/pause", responses=errors(401, 404))
async def pause_schedule(request: Request, function: str, schedule_id: str) -> dict[str, Any]:
    await _find(request, function, schedule_id)
    services = services_of(request)
    await run_in_threadpool(services.schedules.set_paused, function, schedule_id, True)
    return _view(await _find(request, function, schedule_id))


@router.post("/functions/v1/schedules/{function}/{schedule_id}/resume", responses=errors(401, 404))
async def resume_schedule(request: Request, function: str, schedule_id: str) -> dict[str, Any]:
    """Resume; runs missed while paused follow the schedule's catch-up policy."""
    await _find(request, function, schedule_id)
    services = services_of(request)
    await run_in_threadpool(services.schedules.set_paused, function, schedule_id, False)
    return _view(await _find(request, function, schedule_id))


@router.post(
    "/functions/v1/schedules/{function}/{schedule_id}/run",
    status_code=202,
    responses=errors(401, 404),
)
async def run_schedule_now(request: Request, function: str, schedule_id: str) -> dict[str, Any]:
    row = await _find(request, function, schedule_id)
    services = services_of(request)
    now = time.time()
    payload = {
        "type": SCHEDULE, "schedule": row["cron"], "timezone": row["timezone"],
        "scheduled_at": iso(now), "scheduled_at_epoch": now, "enqueued_at": iso(now),
        "missed": False, "manual": True,
    }  # fmt: skip
    job_id = f"schedule:{function}:{schedule_id}:manual:{uuid.uuid4().hex}"
    job = NewJob(job_id, function, SCHEDULE, json.dumps(payload).encode())
    await run_in_threadpool(services.queue.enqueue, [job])
    services.dispatcher.wake()
    return {"invocation_id": job_id, "status": "queued"}
