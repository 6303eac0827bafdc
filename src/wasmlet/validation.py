"""Validation errors as sentences: one `Problem` per field, never a repr or a path.

pydantic's messages speak of "Input"; these name the field as the user wrote it
(`minutes must be greater than 0`). `problems` turns a list of pydantic error
dictionaries into `Problem`s; `json_problem` says why some text is not JSON without
the "line 1 column 2" that `json.JSONDecodeError` puts in its message.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from wasmlet.errors import Problem, quoted

Loc = Sequence[int | str]
_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")

_BOUNDS = {
    "greater_than": ("gt", "greater than"),
    "greater_than_equal": ("ge", "at least"),
    "less_than": ("lt", "less than"),
    "less_than_equal": ("le", "at most"),
    "multiple_of": ("multiple_of", "a multiple of"),
}
_KINDS = {
    "int_parsing": "an integer",
    "int_type": "an integer",
    "int_from_float": "an integer",
    "float_parsing": "a number",
    "float_type": "a number",
    "finite_number": "a finite number",
    "bool_parsing": "true or false",
    "bool_type": "true or false",
    "string_type": "a string",
    "string_unicode": "a string",
    "dict_type": "an object",
    "model_type": "an object",
    "model_attributes_type": "an object",
    "list_type": "a list",
    "path_type": "a path",
    "none_required": "null",
}
_LENGTHS = {
    "string_too_short": ("min_length", "at least {} characters long"),
    "string_too_long": ("max_length", "at most {} characters long"),
    "too_short": ("min_length", "at least {} items long"),
    "too_long": ("max_length", "at most {} items long"),
}


def label_of(loc: Loc) -> str:
    """`retry.max_retries`, `triggers[0].cron`: a location as it is written in JSON."""
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


def field_path(prefix: str, *parts: object) -> str:
    """`config.retry.max_retries` from a prefix (a path already) and keys; a key that is
    not a plain name is quoted (`config.env["a b"]`); a dict key's own error names the key."""
    if parts[-1:] == ("[key]",):
        parts = parts[:-2]
    path = prefix
    for part in parts:
        text = str(part)
        if isinstance(part, int) and not isinstance(part, bool):
            path += f"[{part}]"
        elif _PLAIN_KEY.fullmatch(text):
            path += f".{text}" if path else text
        else:
            path += f"[{quoted(text)}]"
    return path or "value"


def sentence(label: str, error: Mapping[str, Any]) -> str:
    """One sentence that says what is wrong with `label`, from one pydantic error."""
    kind = str(error.get("type", ""))
    ctx: Mapping[str, Any] = error.get("ctx") or {}
    subject = label or "the value"
    if kind == "missing":
        return f"{subject} is required"
    if kind == "extra_forbidden":
        return f"{subject} is not a known field"
    if kind in _BOUNDS:
        key, words = _BOUNDS[kind]
        return f"{subject} must be {words} {_plain(ctx.get(key))}"
    if kind in _KINDS:
        return f"{subject} must be {_KINDS[kind]}"
    if kind in _LENGTHS:
        key, words = _LENGTHS[kind]
        return f"{subject} must be {words.format(_plain(ctx.get(key)))}"
    if kind == "string_pattern_mismatch":
        return f"{subject} must match {_plain(ctx.get('pattern'))}"
    if kind in ("literal_error", "enum"):
        return f"{subject} must be one of {_plain(ctx.get('expected'))}"
    if kind in ("json_invalid", "json_type"):
        return f"{subject} is not valid JSON"
    if kind in ("value_error", "assertion_error"):
        reason = str(ctx.get("error", "")) or _unspoken(str(error.get("msg", "")))
        return f"{subject}: {reason}" if label else reason
    return f"{subject} {_unspoken(str(error.get('msg', 'is not valid')))}"


def problems(
    errors: Iterable[Mapping[str, Any]],
    *,
    field_of: Callable[[Loc], str] = label_of,
    said_as: Callable[[Loc], str] = label_of,
) -> list[Problem]:
    """`Problem`s from pydantic error dictionaries (`ValidationError.errors()`).

    `field_of` names the location for programs, `said_as` for the sentence.
    """
    found: list[Problem] = []
    for error in errors:
        loc = tuple(error.get("loc", ()))
        found.append(Problem(field_of(loc), sentence(said_as(loc), error)))
    return found


def json_problem(exc: json.JSONDecodeError | UnicodeDecodeError) -> str:
    """Why a body is not JSON, with the character position and no line numbers."""
    if isinstance(exc, UnicodeDecodeError):
        return "not UTF-8 text"
    return f"{exc.msg.lower()} at character {exc.pos}"


def _plain(value: object) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _unspoken(message: str) -> str:
    """pydantic's own words without "Input should be" or "Value error, "."""
    for prefix, replacement in (
        ("Value error, ", ""),
        ("Assertion failed, ", ""),
        ("Input should be", "must be"),
        ("Input ", ""),
    ):
        if message.startswith(prefix):
            message = replacement + message[len(prefix) :]
    return message.strip() or "is not valid"
