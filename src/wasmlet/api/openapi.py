"""The OpenAPI schema tells the truth: every error a route answers, with its body.

Routes declare their errors with `responses=errors(400, 401, ...)`; a 500 (the last
resort) is on every operation. FastAPI's own 422 is removed: a request that fails
validation is answered 400 with the error body.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import SkipJsonSchema

from wasmlet.registry.models import FunctionConfig


class FieldProblem(BaseModel):
    model_config = ConfigDict(extra="forbid")

    field: str
    problem: str


class ErrorDetail(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: str
    retriable: bool
    message: str
    function: str | None
    request_id: str
    errors: list[FieldProblem] = Field(
        default_factory=list,
        description="On a 400 for the request's fields: one entry per problem",
    )
    hint: str | None = Field(
        None,
        description="On an invocation's error: the command that shows its log lines, "
        "`wasmlet logs NAME --request-id ID`",
    )


class ErrorBody(BaseModel):
    """Every error: its status, a `type`, whether retrying can help, the request id."""

    model_config = ConfigDict(extra="forbid", title="Error")

    error: ErrorDetail


class ConfigChanges(FunctionConfig):
    """PATCH /functions/v1/functions/{name}: config fields to change, flat or under
    `config`, and `enabled`. Limits over the operator's maximums are refused with 400."""

    model_config = ConfigDict(extra="forbid", title="ConfigChanges")

    # `"enabled": null` is refused; `"config": null` means no nested changes.
    enabled: bool | SkipJsonSchema[None] = None
    config: FunctionConfig | None = None


CONFIG_CHANGES_REF = {"$ref": "#/components/schemas/ConfigChanges"}
_DOC_MODELS: tuple[type[BaseModel], ...] = (ConfigChanges,)

_REQUEST_ID = {"description": "The request id, also in the body", "schema": {"type": "string"}}
_RETRY_AFTER = {"description": "Seconds to wait before retrying", "schema": {"type": "string"}}
_TYPES = {
    400: "invalid_payload, invalid_config, invalid_name, invalid_trigger, invalid_wasm or "
    "invalid_source: the request is wrong and nothing was stored; `errors` lists the "
    "problem with each field",
    401: "unauthorized: missing or wrong key",
    404: "function_not_found or not_found",
    405: "method_not_allowed: the path exists, the method does not; `Allow` lists the methods",
    413: "payload_too_large",
    429: "too_many_requests: over a concurrency limit; see Retry-After",
    500: "internal_error: a platform bug; the body says no more, the server log has the rest",
    503: "circuit_open, db_unavailable or module_unavailable (this node cannot compile the "
    "function's stored module); see Retry-After",
    504: "timeout: the function ran past its timeout",
    507: "memory_limit_exceeded: the function asked for more memory than its limit",
}
_FUNCTION_500 = (
    "function_error (trap, non-zero exit, response too large), host_function_error, "
    "runtime_crash (retriable), or internal_error (a platform bug)"
)


def errors(*statuses: int, function_outcomes: bool = False) -> dict[int | str, dict[str, Any]]:
    """The `responses=` of a route that answers these error statuses (500 always)."""
    documented: dict[int | str, dict[str, Any]] = {}
    for status in sorted({*statuses, 500}):
        headers: dict[str, Any] = {"X-Request-Id": {**_REQUEST_ID, "required": True}}
        if status == 429:
            headers["Retry-After"] = {**_RETRY_AFTER, "required": True}
        if status == 503:
            headers["Retry-After"] = _RETRY_AFTER
        if status == 405:
            headers["Allow"] = {"description": "The methods the path takes", "required": True,
                                "schema": {"type": "string"}}  # fmt: skip
        words = _FUNCTION_500 if status == 500 and function_outcomes else _TYPES[status]
        documented[status] = {"model": ErrorBody, "description": words, "headers": headers}
    return documented


FUNCTION_OUTCOMES = (500, 503, 504, 507)


def install_openapi(app: FastAPI) -> None:
    """Serve the schema without FastAPI's 422, which this API never answers."""

    def schema() -> dict[str, Any]:
        if app.openapi_schema is None:
            built = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            for path_item in built.get("paths", {}).values():
                for operation in path_item.values():
                    if isinstance(operation, dict):
                        operation.get("responses", {}).pop("422", None)
            components = built.setdefault("components", {}).setdefault("schemas", {})
            for unused in ("HTTPValidationError", "ValidationError"):
                components.pop(unused, None)
            for model in _DOC_MODELS:
                found = model.model_json_schema(ref_template="#/components/schemas/{model}")
                components.update(found.pop("$defs", {}))
                components[model.__name__] = found
            app.openapi_schema = built
        return app.openapi_schema

    app.openapi = schema  # type: ignore[method-assign]
