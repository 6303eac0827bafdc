"""Function name rules (DESIGN.md): lower-case, starts with a letter, at most 63 chars."""

from __future__ import annotations

import re

from wasmlet.errors import InvalidName

NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
RESERVED_NAMES = frozenset(
    {
        "deploy", "invoke", "functions", "invocations", "dlq", "schedules", "alerts",
        "health", "metrics", "openapi", "docs", "keys", "admin", "v1", "api", "stats",
        "nodes",
    }
)  # fmt: skip


def validate_name(name: object) -> str:
    if not isinstance(name, str) or not name:
        raise InvalidName("Invalid function name: a name is required")
    if not NAME_PATTERN.match(name):
        shown = name if len(name) <= 80 else name[:77] + "..."
        reason = _reason(name)
        raise InvalidName(f"Invalid function name {shown!r} ({reason})", function=None)
    if name in RESERVED_NAMES:
        raise InvalidName(f"Invalid function name {name!r} (reserved)")
    return name


def _reason(name: str) -> str:
    if " " in name:
        return "contains space"
    if len(name) > 63:
        return "longer than 63 characters"
    if not name[0].isalpha() or not name[0].islower():
        return "must start with a lower-case letter"
    return "only a-z, 0-9, '_' and '-' are allowed"
