"""GET /functions/v1/breakers: the circuit breakers refusing calls now."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Request

from wasmlet.api.auth import require_service_key
from wasmlet.api.openapi import errors
from wasmlet.api.routes.deps import services_of
from wasmlet.observability.history_views import iso

router = APIRouter(tags=["alerts"])


@router.get("/functions/v1/breakers", responses=errors(401))
async def open_breakers(request: Request) -> dict[str, Any]:
    """Functions whose breaker refuses calls now (open, or half-open while its probe
    runs), by name, with when it lets a call through again (`reset_at`)."""
    services = services_of(request)
    require_service_key(request, services.keys)
    breakers = services.invoker.breakers
    now = time.time()
    views = []
    for name in sorted(breakers.refusing()):
        view: dict[str, Any] = {"function": name, **breakers.view(name)}
        retry_after = float(view.get("retry_after_s") or 0.0)
        view["reset_at"] = iso(now + retry_after)
        views.append(view)
    return {"breakers": views}
