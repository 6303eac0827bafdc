"""A function's kept versions, and rollback to one of them (as a new version)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool

from wasmlet.api.auth import require_service_key
from wasmlet.api.openapi import errors
from wasmlet.api.routes.deps import parse_json, read_body, services_of
from wasmlet.errors import FunctionError, InvalidPayload, quoted
from wasmlet.registry.registry import MAX_VERSION
from wasmlet.telemetry.logs import get_logger

router = APIRouter(tags=["functions"])
MAX_BODY = 4096
MAX_PAGE = 100

_ROLLBACK_SCHEMA: dict[str, Any] = {
    "requestBody": {
        "required": False,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "version": {
                            "type": "integer",
                            "minimum": 1,
                            "maximum": MAX_VERSION,
                            "description": "The kept version to make live again; absent: "
                            "the one before the live version",
                        }
                    },
                }
            }
        },
    }
}


@router.get("/functions/v1/functions/{name}/versions", responses=errors(400, 401, 404))
async def list_versions(
    request: Request,
    name: str,
    limit: int = Query(20, ge=1, le=MAX_PAGE, description="versions per page"),
    before: int | None = Query(
        None, ge=1, le=MAX_VERSION, description="cursor: versions below this number"
    ),
) -> dict[str, Any]:
    """The function's kept versions, newest first, with the live one marked.

    Pass the answer's `next_before` as `before` for the next page (null: no more).
    """
    services = services_of(request)
    require_service_key(request, services.keys)
    record, versions = await run_in_threadpool(services.registry.versions, name, limit, before)
    more = len(versions) == limit and versions[-1].version > 1
    return {
        "function": record.name,
        "live_version": record.version,
        "versions_kept": services.settings.versions_kept,
        "versions": [version.public_view(record.version) for version in versions],
        "next_before": versions[-1].version if more else None,
    }


@router.post(
    "/functions/v1/functions/{name}/rollback",
    openapi_extra=_ROLLBACK_SCHEMA,
    responses={
        **errors(400, 401, 404, 413),
        200: {"description": "The function's record, live at a new version"},
    },
)
async def rollback(request: Request, name: str) -> dict[str, Any]:
    """Make a kept version's module, config and triggers live again as a NEW version.

    History stays linear: rolling back from v3 to v2 creates v4 (with v2's module), and
    the new version records `rolled_back_from`. Triggers and schedules are reinstalled
    exactly as a deploy does; every node serves the new version.
    """
    services = services_of(request)
    require_service_key(request, services.keys)
    version = _requested_version(await read_body(request, MAX_BODY))
    log = get_logger("rollback")
    try:
        record = await run_in_threadpool(services.registry.rollback, name, version)
    except FunctionError as exc:
        log.warning("rollback refused", function=name[:64], error=f"{exc.status} {exc.message}")
        raise
    log.info("function rolled back", function=name, version=record.version, to=version)
    return record.public_view()


def _requested_version(body: bytes) -> int | None:
    if not body.strip():
        return None
    data = parse_json(body, InvalidPayload, "Malformed rollback request")
    if not isinstance(data, dict):
        raise InvalidPayload("Malformed rollback request: expected a JSON object")
    for field in data:
        if field != "version":
            raise InvalidPayload(
                f"Malformed rollback request: {quoted(str(field), 40)} is not a known field "
                "(allowed: version)"
            )
    version = data.get("version")
    if version is None:
        return None
    if isinstance(version, float) and version.is_integer():
        version = int(version)  # JSON Schema's integer: 3.0 is one
    if isinstance(version, bool) or not isinstance(version, int) or not 1 <= version <= MAX_VERSION:
        raise InvalidPayload(
            f"Malformed rollback request: version must be an integer from 1 to {MAX_VERSION}"
        )
    return version
