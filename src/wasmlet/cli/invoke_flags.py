"""`wasmlet invoke` flags: `-X METHOD`, `-H 'Name: value'`, `--path /sub`, `--data @file`,
and the `-i` head (status line and headers) printed before the body."""

from __future__ import annotations

import re
import sys
from collections.abc import Sequence
from http import HTTPStatus
from pathlib import Path

import click

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_VALUE = re.compile(r"[\t\x20-\x7e\x80-\xff]*")
_PATH = re.compile(r"/[\x21-\x7e]*")
MAX_PATH = 2048


def parse_method(method: str) -> str:
    upper = method.upper()
    if upper not in METHODS:
        raise click.BadParameter(
            f"{method!r} is not one of {', '.join(METHODS)}", param_hint="'-X' / '--method'"
        )
    return upper


def parse_headers(lines: Sequence[str]) -> dict[str, str]:
    headers: dict[str, str] = {}
    for line in lines:
        name, sep, value = line.partition(":")
        name, value = name.strip(), value.strip()
        if not sep or not _TOKEN.fullmatch(name) or not _VALUE.fullmatch(value):
            raise click.BadParameter(
                f"expected 'Name: value' (a header name, printable value), got {line!r}",
                param_hint="'-H' / '--header'",
            )
        headers[name.lower()] = value
    return headers


def parse_path(path: str | None) -> str:
    if not path:
        return ""
    if not path.startswith("/"):
        path = "/" + path
    if len(path) > MAX_PATH or not _PATH.fullmatch(path):
        raise click.BadParameter(
            f"{path!r} must be a URL path: visible ASCII without spaces, at most {MAX_PATH}",
            param_hint="'--path'",
        )
    return path


def read_payload(data: str | None, file: str | None) -> bytes:
    """`--data TEXT`, `--data @FILE`, `--data -` (stdin) or `--file FILE`."""
    if data is not None and file is not None:
        raise click.UsageError("give --data or --file, not both")
    if file is not None:
        return Path(file).read_bytes()
    if data == "-":
        return sys.stdin.buffer.read()
    if data is not None and data.startswith("@"):
        source = Path(data[1:])
        if not source.is_file():
            raise click.BadParameter(f"no file {data[1:]!r}", param_hint="'-d' / '--data'")
        return source.read_bytes()
    return data.encode() if data is not None else b""


def head(status: int, headers: dict[str, str]) -> str:
    """`HTTP/1.1 200 OK` and one `name: value` line per header, then a blank line."""
    try:
        reason = HTTPStatus(status).phrase
    except ValueError:
        reason = ""
    lines = [f"HTTP/1.1 {status} {reason}".rstrip()]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return "\r\n".join(lines) + "\r\n\r\n"
