"""`wasmlet config NAME --set k=v --unset k`: the changes sent to the PATCH route.

A key is a config field (`timeout_ms`) or a dotted path into one (`env.LEVEL`,
`retry.max_retries`). A value is JSON when it parses as JSON (`500`, `true`, `["a"]`),
else the text as a string; under `env` a value is always the text (env values are
strings). PATCH replaces top-level fields, so a dotted key sends its whole field: the live
one with that key changed. `--unset` of a field sends its default; of a dotted key,
the field without that key."""

from __future__ import annotations

import copy
import json
from collections.abc import Sequence
from typing import Any

import click

MAX_DEPTH = 4


def _fields() -> dict[str, Any]:
    from wasmlet.registry.models import FunctionConfig

    defaults: dict[str, Any] = FunctionConfig().model_dump()
    return defaults


def parse_key(key: str, flag: str) -> list[str]:
    path = key.split(".")
    if not key or any(not part for part in path) or len(path) > MAX_DEPTH:
        raise click.BadParameter(f"{key!r} is not a config key", param_hint=f"'{flag}'")
    if path[0] not in _fields():
        known = ", ".join(sorted(_fields()))
        raise click.BadParameter(
            f"{path[0]!r} is not a config field (one of {known})", param_hint=f"'{flag}'"
        )
    return path


def parse_value(path: list[str], text: str) -> Any:
    if path[0] == "env":
        return text
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def parse_set(assignment: str) -> tuple[list[str], Any]:
    key, sep, text = assignment.partition("=")
    if not sep:
        raise click.BadParameter(f"expected KEY=VALUE, got {assignment!r}", param_hint="'--set'")
    path = parse_key(key, "--set")
    return path, parse_value(path, text)


def changes_for(live: dict[str, Any], sets: Sequence[str], unsets: Sequence[str]) -> dict[str, Any]:
    """The top-level fields to PATCH, given the live config."""
    if not sets and not unsets:
        raise click.UsageError("nothing to change: give --set KEY=VALUE or --unset KEY")
    assignments = [parse_set(item) for item in sets]
    removals = [parse_key(key, "--unset") for key in unsets]
    changes: dict[str, Any] = {}
    for path in removals:
        if len(path) == 1:
            changes[path[0]] = _fields()[path[0]]
            continue
        parent = _nested(changes, live, path, "--unset")
        if parent is not None:
            parent.pop(path[-1], None)
    for path, value in assignments:
        if len(path) == 1:
            changes[path[0]] = value
            continue
        parent = _nested(changes, live, path, "--set", create=True)
        assert parent is not None
        parent[path[-1]] = value
    return changes


def _nested(
    changes: dict[str, Any],
    live: dict[str, Any],
    path: list[str],
    flag: str,
    create: bool = False,
) -> dict[str, Any] | None:
    """The dict that holds `path[-1]` inside `changes` (copied from the live field)."""
    top = path[0]
    if top not in changes:
        changes[top] = copy.deepcopy(live.get(top) if live.get(top) is not None else {})
    node: Any = changes[top]
    for part in path[1:-1]:
        if not isinstance(node, dict):
            break
        if part not in node and create:
            node[part] = {}
        node = node.get(part)
    if not isinstance(node, dict):
        if create:
            raise click.BadParameter(
                f"{'.'.join(path[:-1])} is not an object", param_hint=f"'{flag}'"
            )
        return None
    return node
