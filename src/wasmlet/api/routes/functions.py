"""Function management: list, read, change config (enabling too), delete."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from wasmlet.api.auth import require_service_key
from wasmlet.api.openapi import CONFIG_CHANGES_REF, errors
from wasmlet.api.routes.deps import parse_json, read_body, services_of
from wasmlet.errors import InvalidConfig
from wasmlet.telemetry.logs import get_logger

router = APIRouter(tags=["functions"])


@router.get("/functions/v1/functions", responses=errors(401))
async def list_functions(request: Request) -> dict[str, Any]:
    services = services_of(request)
    require_service_key(request, services.keys)
    records = await run_in_threadpool(services.registry.list)
    return {"functions": [record.public_view() for record in records]}


@router.get("/functions/v1/functions/{name}", responses=errors(401, 404))
async def get_function(request: Request, name: str) -> dict[str, Any]:
    services = services_of(request)
    require_service_key(request, services.keys)
    record = await run_in_threadpool(services.registry.get, name, cached=False)
    return {**record.public_view(), "circuit_breaker": services.invoker.breakers.view(name)}


@router.patch(
    "/functions/v1/functions/{name}",
    responses=errors(400, 401, 404, 413),
    openapi_extra={
        "requestBody": {"content": {"application/json": {"schema": CONFIG_CHANGES_REF}}}
    },
)
async def update_function(request: Request, name: str) -> dict[str, Any]:
    services = services_of(request)
    require_service_key(request, services.keys)
    body = await read_body(request, 1024 * 1024)
    changes = parse_json(body or b"{}", InvalidConfig, "Invalid function configuration")
    if not isinstance(changes, dict):
        raise InvalidConfig("Invalid function configuration: expected a JSON object")
    field = ""
    nested = changes.pop("config", None)  # null, as the schema allows: no nested changes
    if nested is not None:
        if not isinstance(nested, dict):
            raise InvalidConfig("Invalid function configuration: config must be an object")
        changes, field = {**nested, **changes}, "config"
    record = await run_in_threadpool(services.registry.update, name, changes, field)
    get_logger("update").info(
        "function updated", function=name, enabled=record.enabled, fields=sorted(changes)
    )
    return record.public_view()


@router.delete("/functions/v1/functions/{name}", status_code=204, responses=errors(401, 404))
async def delete_function(request: Request, name: str) -> Response:
    services = services_of(request)
    require_service_key(request, services.keys)
    await run_in_threadpool(services.registry.delete, name)
    get_logger("delete").info("function deleted", function=name)
    return Response(status_code=204)
