"""Health and metrics."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST

from wasmlet.api.routes.deps import services_of

router = APIRouter(tags=["system"])


@router.get("/health")
async def health(request: Request) -> JSONResponse:
    services = services_of(request)
    alive = services.pool.alive
    body: dict[str, Any] = {
        "status": "ok" if alive > 0 else "unhealthy",
        "workers": {"alive": alive, "size": services.pool.size, "busy": services.pool.busy},
        "database": services.store.dialect,
    }
    return JSONResponse(body, status_code=200 if alive > 0 else 503)


@router.get("/metrics")
async def metrics(request: Request) -> Response:
    services = services_of(request)
    services.metrics.workers_alive.set(services.pool.alive)
    return Response(services.metrics.render(), media_type=CONTENT_TYPE_LATEST)
