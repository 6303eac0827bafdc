"""Function name rules (DESIGN.md): lower-case, starts with a letter, at most 63 chars."""

from __future__ import annotations

import re

from wasmlet.errors import InvalidName, quoted

NAME_PATTERN = re.compile(r"[a-z][a-z0-9_-]{0,62}")
RESERVED_NAMES = frozenset(
    {
        "deploy", "invoke", "functions", "invocations", "dlq", "schedules", "alerts",
        "health", "metrics", "openapi", "docs", "keys", "admin", "v1", "api", "stats",
        "nodes", "secrets", "breakers", "requests",
    }
)  # fmt: skip


def validate_name(name: object) -> str:
    if not isinstance(name, str) or not name:
        raise InvalidName("Invalid function name: a name is required")
    if not NAME_PATTERN.fullmatch(name):
        raise InvalidName(f"Invalid function name {quoted(name, 80)} ({_reason(name)})")
    if name in RESERVED_NAMES:
        raise InvalidName(f"Invalid function name {quoted(name)} (reserved)")
    return name


def _reason(name: str) -> str:
    if name != name.strip():
        return "leading or trailing white space"
    if " " in name:
        return "contains space"
    if len(name) > 63:
        return "longer than 63 characters"
    if not name[0].isalpha() or not name[0].islower():
        return "must start with a lower-case letter"
    return "only a-z, 0-9, '_' and '-' are allowed"
