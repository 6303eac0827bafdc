"""Readable refusals: a pydantic `ValidationError` as the user would say it.

A message names the field as the user wrote it (`config.retry.max_retries`) and says
what it must be; user input is shown JSON-quoted and cut short, never as a Python repr.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import ValidationError

from wasmlet.errors import quoted

_PLAIN = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
_MUST_BE = {
    "int_type": "must be an integer",
    "int_parsing": "must be an integer",
    "int_from_float": "must be an integer",
    "float_type": "must be a number",
    "float_parsing": "must be a number",
    "finite_number": "must be a finite number",
    "bool_type": "must be true or false",
    "bool_parsing": "must be true or false",
    "string_type": "must be a string",
    "dict_type": "must be an object",
    "model_type": "must be an object",
    "model_attributes_type": "must be an object",
    "extra_forbidden": "is not a known field",
    "missing": "is required",
}
_BOUNDS = {
    "greater_than_equal": ("ge", "must be at least"),
    "greater_than": ("gt", "must be greater than"),
    "less_than_equal": ("le", "must be at most"),
    "less_than": ("lt", "must be less than"),
    "string_too_long": ("max_length", "must be at most {} characters long"),
}


def describe(exc: ValidationError, prefix: str, limit: int = 3) -> str:
    """The first `limit` problems, each as `<field> <what it must be>`."""
    return "; ".join(_one(error, prefix) for error in exc.errors()[:limit])


def _one(error: Any, prefix: str) -> str:
    loc = tuple(error["loc"])
    if loc[-1:] == ("[key]",):
        loc = loc[:-2]  # a dict key: the message names the key itself
    return f"{field_path(prefix, *loc)} {_what(error)}"


def field_path(prefix: str, *parts: object) -> str:
    """`config.retry.max_retries` from a prefix (a path already) and keys; a key that is
    not a plain name is quoted: `config["a b"]`."""
    path = prefix
    for part in parts:
        text = str(part)
        if isinstance(part, int) and not isinstance(part, bool):
            path += f"[{part}]"
        elif _PLAIN.fullmatch(text):
            path += f".{text}" if path else text
        else:
            path += f"[{quoted(text)}]"
    return path or "value"


def _what(error: Any) -> str:
    kind = error["type"]
    if kind in _MUST_BE:
        return _MUST_BE[kind]
    ctx = error.get("ctx") or {}
    if kind in _BOUNDS:
        key, text = _BOUNDS[kind]
        bound = _number(ctx.get(key))
        return text.format(bound) if "{}" in text else f"{text} {bound}"
    if kind == "literal_error":
        return f"must be one of {ctx.get('expected', 'the allowed values')}"
    message = str(error["msg"])
    return message[:1].lower() + message[1:]


def _number(value: object) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
