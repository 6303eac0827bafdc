"""POST /functions/v1/deploy: JSON with base64 wasm or JavaScript source, or multipart."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException

from wasmlet.api.auth import require_service_key
from wasmlet.api.javascript import package_fields, runtime_of, source_text
from wasmlet.api.openapi import errors
from wasmlet.api.routes.deps import parse_json, read_body, services_of
from wasmlet.errors import (
    FunctionError,
    InvalidConfig,
    InvalidPayload,
    InvalidTrigger,
    InvalidWasm,
    quoted,
)
from wasmlet.telemetry.logs import get_logger
from wasmlet.validation import json_problem

router = APIRouter()
MAX_MODULE_BYTES = 64 * 1024 * 1024
FIELDS = ("name", "wasm", "runtime", "source", "filename", "config", "triggers")

_DEPLOY_SCHEMA: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["name"],
                    "additionalProperties": False,
                    "properties": {
                        "name": {"type": "string", "pattern": "^[a-z][a-z0-9_-]{0,62}$"},
                        "wasm": {"type": "string", "format": "byte"},
                        "runtime": {"type": "string", "enum": ["wasm", "javascript"]},
                        "source": {
                            "type": "string",
                            "description": "JavaScript or TypeScript source",
                        },
                        "filename": {
                            "type": "string",
                            "description": "for stack traces; a .ts or .mts name "
                            "makes the source TypeScript",
                        },
                        "config": {"type": "object"},
                        "triggers": {"type": "array", "items": {"type": "object"}},
                    },
                }
            },
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["name"],
                    "properties": {
                        "name": {"type": "string"},
                        "wasm": {"type": "string", "format": "binary"},
                        "runtime": {"type": "string", "enum": ["wasm", "javascript"]},
                        "source": {"type": "string", "format": "binary"},
                        "config": {"type": "string", "description": "JSON object"},
                        "triggers": {"type": "string", "description": "JSON array"},
                    },
                }
            },
        },
    }
}


@router.post(
    "/functions/v1/deploy",
    openapi_extra=_DEPLOY_SCHEMA,
    tags=["functions"],
    responses={
        **errors(400, 401, 413, 429),
        200: {"description": "Redeployed: the function's record, at its new version"},
        201: {"description": "Created: the function's record"},
    },
)
async def deploy(request: Request) -> JSONResponse:
    """Create a function, or redeploy it as a new version."""
    services = services_of(request)
    require_service_key(request, services.keys)
    log = get_logger("deploy")
    fields: dict[str, Any] = {}
    try:
        if request.headers.get("content-type", "").startswith("multipart/form-data"):
            await _multipart_fields(request, fields)
        else:
            _json_fields(await read_body(request, MAX_MODULE_BYTES * 2), fields)
        if fields["runtime"] == "javascript":
            fields["wasm"] = await run_in_threadpool(package_fields, services, fields)
        record, created = await run_in_threadpool(
            services.registry.deploy,
            fields["name"],
            fields["wasm"],
            fields["config"],
            fields["triggers"],
        )
    except FunctionError as exc:
        services.metrics.deploys.labels("refused").inc()
        name = fields.get("name")
        log.warning(
            "deploy refused",
            function=name[:64] if isinstance(name, str) else None,
            error=f"{exc.status} {exc.message}",
            error_type=exc.type,
        )
        raise
    services.metrics.deploys.labels("created" if created else "redeployed").inc()
    log.info("function deployed", function=record.name, version=record.version, created=created)
    return JSONResponse(record.public_view(), status_code=201 if created else 200)


def _json_fields(body: bytes, fields: dict[str, Any]) -> None:
    """Fill `fields` from a JSON deploy body; the name first, so a refusal can name it."""
    data = parse_json(body, InvalidPayload, "Malformed deploy request")
    if not isinstance(data, dict):
        raise InvalidPayload("Malformed deploy request: expected a JSON object")
    _check_known(data)
    fields["name"] = data.get("name")
    fields["config"] = data.get("config")
    fields["triggers"] = data.get("triggers")
    fields["runtime"] = runtime_of(data.get("runtime"), "source" in data, "wasm" in data)
    if fields["runtime"] == "javascript":
        fields["source"] = source_text(data.get("source"))
        fields["filename"] = data.get("filename")
        return
    wasm_text = data.get("wasm")
    if not isinstance(wasm_text, str) or not wasm_text:
        raise InvalidWasm("Invalid WASM binary: 'wasm' must be base64 text")
    try:
        fields["wasm"] = base64.b64decode(wasm_text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidWasm("Invalid WASM binary: 'wasm' is not valid base64") from exc


async def _multipart_fields(request: Request, fields: dict[str, Any]) -> None:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > MAX_MODULE_BYTES + 1024 * 1024:
        await read_body(request, MAX_MODULE_BYTES)
    try:
        form = await request.form(
            max_files=2, max_fields=len(FIELDS), max_part_size=MAX_MODULE_BYTES
        )
    except (HTTPException, MultiPartException) as exc:
        detail = exc.detail if isinstance(exc, HTTPException) else exc.message
        raise InvalidPayload(f"Malformed deploy request: {detail}") from exc
    _check_known(form)
    fields["name"] = form.get("name")
    fields["config"] = _json_field(form.get("config"), "config", InvalidConfig)
    fields["triggers"] = _json_field(form.get("triggers"), "triggers", InvalidTrigger)
    upload = form.get("wasm")
    source = form.get("source")
    fields["runtime"] = runtime_of(form.get("runtime"), source is not None, upload is not None)
    if fields["runtime"] == "javascript":
        given = source if source is not None else upload
        if isinstance(given, UploadFile):
            fields["filename"] = given.filename
            fields["source"] = source_text(await given.read())
        else:
            fields["filename"] = form.get("filename")
            fields["source"] = source_text(given)
        return
    if not isinstance(upload, UploadFile):
        raise InvalidWasm("Invalid WASM binary: the form needs a 'wasm' file")
    fields["wasm"] = await upload.read()


def _check_known(fields: Mapping[str, object]) -> None:
    for field in fields:
        if field not in FIELDS:
            raise InvalidPayload(
                f"Malformed deploy request: {quoted(field)} is not a known field "
                f"(allowed: {', '.join(FIELDS)})"
            )


def _json_field(raw: object, field: str, error: type[FunctionError]) -> object:
    if raw is None or raw == "":
        return None
    if not isinstance(raw, str):
        raise error(f"Malformed deploy request: {field} must be JSON text")
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        raise error(f"'{field}' is not valid JSON: {json_problem(exc)}") from exc
