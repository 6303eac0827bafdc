"""Project-wide secrets: set, list (never values), unset. Service key only."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from wasmlet.api.auth import require_service_key
from wasmlet.api.openapi import errors
from wasmlet.api.routes.deps import parse_json, read_body, services_of
from wasmlet.errors import InvalidConfig
from wasmlet.registry.models import ENV_NAME
from wasmlet.secrets.service import MAX_PUT, MAX_SECRETS, MAX_SECRETS_BYTES
from wasmlet.telemetry.logs import get_logger

router = APIRouter(tags=["secrets"])
MAX_BODY = 256 * 1024

_PUT_BODY = {
    "type": "array",
    "minItems": 1,
    "maxItems": MAX_PUT,
    "description": f"Set (or replace) each secret. At most {MAX_SECRETS} secrets and "
    f"{MAX_SECRETS_BYTES} bytes of names and values in all, those already set included.",
    "items": {
        "type": "object",
        "required": ["name", "value"],
        "additionalProperties": False,
        "properties": {
            "name": {
                "type": "string",
                "pattern": f"^(?![Ww][Aa][Ss][Mm][Ll][Ee][Tt]_){ENV_NAME.pattern}$",
            },
            "value": {"type": "string", "pattern": "^[^\\u0000]*$"},
        },
    },
}


@router.get("/functions/v1/secrets", responses=errors(401))
async def list_secrets(request: Request) -> dict[str, Any]:
    services = services_of(request)
    require_service_key(request, services.keys)
    return {"secrets": await run_in_threadpool(services.secrets.listing)}


@router.put(
    "/functions/v1/secrets",
    responses=errors(400, 401, 413),
    openapi_extra={"requestBody": {"content": {"application/json": {"schema": _PUT_BODY}}}},
)
async def put_secrets(request: Request) -> dict[str, Any]:
    services = services_of(request)
    require_service_key(request, services.keys)
    body = await read_body(request, MAX_BODY)
    items = parse_json(body, InvalidConfig, "Invalid secrets")
    listing = await run_in_threadpool(services.secrets.put, items)
    get_logger("secrets").info(
        "secrets set", names=sorted({i["name"] for i in items if isinstance(i, dict)})
    )
    return {"secrets": listing}


@router.delete("/functions/v1/secrets/{name}", status_code=204, responses=errors(401, 404))
async def delete_secret(request: Request, name: str) -> Response:
    services = services_of(request)
    require_service_key(request, services.keys)
    await run_in_threadpool(services.secrets.delete, name)
    get_logger("secrets").info("secret unset", name=name)
    return Response(status_code=204)
