"""`NAME=VALUE` lines of a dotenv file, for `wasmlet secrets set --env-file`."""

from __future__ import annotations

from pathlib import Path

import click

_QUOTES = ("'", '"')


def read_env_file(path: Path) -> dict[str, str]:
    """Blank lines and `#` comments are skipped, `export ` is dropped and one pair of
    matching quotes around a value is removed. Values are never quoted in an error."""
    values: dict[str, str] = {}
    for number, raw in enumerate(path.read_text("utf-8").splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        line = line.removeprefix("export ").lstrip()
        name, sep, value = line.partition("=")
        if not sep:
            raise click.UsageError(f"{path}:{number}: expected NAME=VALUE")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in _QUOTES:
            value = value[1:-1]
        values[name.strip()] = value
    return values
