"""Schemathesis hooks for tests/api/test_openapi_conformance.py (loaded by the CLI it runs).

A 5xx passes only on an invocation route and only as a function outcome (the error
body's `type`); anything else is a server error. Half the generated function names
on the invocation routes become the deployed function, so its outcomes are tested
too (chosen by a checksum of the drawn name: deterministic across runs); it is never
changed or deleted by the run.
"""

from __future__ import annotations

import zlib
from typing import Any

import schemathesis

DEPLOYED = "hello"
INVOKE_PATHS = frozenset(
    {"/functions/v1/invoke/{name}", "/functions/v1/{name}", "/functions/v1/{name}/{subpath}"}
)
MANAGED = "/functions/v1/functions/{name}"
FUNCTION_OUTCOMES = frozenset(
    {
        "function_error", "host_function_error", "runtime_crash", "circuit_open",
        "db_unavailable", "module_unavailable", "timeout", "memory_limit_exceeded",
    }
)  # fmt: skip


def _error_type(response: schemathesis.Response) -> object:
    try:
        body = response.json()
    except ValueError:
        return None
    error = body.get("error") if isinstance(body, dict) else None
    return error.get("type") if isinstance(error, dict) else None


@schemathesis.check
def no_platform_server_error(
    ctx: schemathesis.CheckContext, response: schemathesis.Response, case: schemathesis.Case[Any]
) -> bool | None:
    """A 5xx is a function's outcome on an invocation route, never the platform's."""
    if response.status_code < 500:
        return None
    if case.operation.path in INVOKE_PATHS and _error_type(response) in FUNCTION_OUTCOMES:
        return None
    raise AssertionError(f"server error {response.status_code}: {response.text[:500]}")


@schemathesis.hook
def map_path_parameters(
    context: schemathesis.HookContext, path_parameters: dict[str, Any] | None
) -> dict[str, Any] | None:
    operation = context.operation
    name = (path_parameters or {}).get("name")
    if operation is None or not isinstance(name, str):
        return path_parameters
    if operation.path in INVOKE_PATHS and zlib.crc32(name.encode()) % 2 == 0:
        return {**(path_parameters or {}), "name": DEPLOYED}
    changes = operation.path == MANAGED and operation.method.upper() in ("PATCH", "DELETE")
    if changes and name == DEPLOYED:  # keep the function the invocations need
        return {**(path_parameters or {}), "name": DEPLOYED + "-other"}
    return path_parameters
