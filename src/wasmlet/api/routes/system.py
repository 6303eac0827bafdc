"""Health and metrics."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST

from wasmlet.api.openapi import errors
from wasmlet.api.routes.deps import services_of

router = APIRouter(tags=["system"])


@router.get(
    "/health",
    responses={
        **errors(),
        503: {
            "description": "Unhealthy: no worker alive or the scheduler stalled (same body)",
            "content": {"application/json": {"schema": {"type": "object"}}},
        },
    },
)
async def health(request: Request) -> JSONResponse:
    services = services_of(request)
    alive = services.pool.alive
    scheduler = services.scheduler
    age = scheduler.heartbeat_age()
    healthy = alive > 0 and scheduler.healthy()
    body: dict[str, Any] = {
        "status": "ok" if healthy else "unhealthy",
        "workers": {"alive": alive, "size": services.pool.size, "busy": services.pool.busy},
        "database": services.store.dialect,
        "scheduler": {
            "healthy": scheduler.healthy(),
            "heartbeat_age_s": round(age, 3) if age is not None else None,
            "tick_s": scheduler.tick_s,
            "restarts": scheduler.restarts,
        },
    }
    return JSONResponse(body, status_code=200 if healthy else 503)


@router.get(
    "/metrics",
    response_class=Response,
    responses={
        **errors(),
        200: {
            "description": "Prometheus text exposition",
            "content": {CONTENT_TYPE_LATEST: {"schema": {"type": "string"}}},
        },
    },
)
async def metrics(request: Request) -> Response:
    services = services_of(request)
    services.metrics.workers_alive.set(services.pool.alive)
    await services.store_gauges.refresh()
    return Response(services.metrics.render(), media_type=CONTENT_TYPE_LATEST)
