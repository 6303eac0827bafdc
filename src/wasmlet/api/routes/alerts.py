"""GET /functions/v1/alerts: the alerts the server's own evaluation has firing now."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from wasmlet.api.auth import require_service_key
from wasmlet.api.openapi import errors
from wasmlet.api.routes.deps import services_of

router = APIRouter(tags=["alerts"])


@router.get("/functions/v1/alerts", responses=errors(401))
async def list_alerts(request: Request) -> dict[str, Any]:
    """Alerts firing now, most severe first: the rules of deploy/prometheus/alerts.yml,
    evaluated inside the server every 15 s."""
    services = services_of(request)
    require_service_key(request, services.keys)
    return {"alerts": services.alerts.firing()}
