"""Named SQL queries and numbered migrations, read from the `sql/` folder."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from importlib import resources

_NAME = re.compile(r"^--\s*name:\s*(\w+)\s*$", re.MULTILINE)
_MIGRATION = re.compile(r"^(\d{4})_[\w-]+\.sql$")


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str


@cache
def load_queries(dialect: str | None = None) -> dict[str, str]:
    """The shared named queries (`sql/queries*.sql`, one file per part), with a dialect's
    own versions of some (`sql/<dialect>/queries.sql`)."""
    root = resources.files("wasmlet.store").joinpath("sql")
    queries: dict[str, str] = {}
    for entry in sorted(root.iterdir(), key=lambda e: e.name):
        if entry.name.startswith("queries") and entry.name.endswith(".sql"):
            found = _parse(entry.read_text("utf-8"))
            clash = set(found) & set(queries)
            if clash:
                raise RuntimeError(f"queries named twice: {sorted(clash)}")
            queries.update(found)
    if dialect is not None:
        override = root.joinpath(dialect, "queries.sql")
        if override.is_file():
            own = _parse(override.read_text("utf-8"))
            unknown = set(own) - set(queries)
            if unknown:
                raise RuntimeError(f"{dialect} overrides unknown queries: {sorted(unknown)}")
            queries.update(own)
    return queries


def _parse(text: str) -> dict[str, str]:
    parts = _NAME.split(text)
    return {name: body.strip() for name, body in zip(parts[1::2], parts[2::2], strict=True)}


@cache
def load_migrations(dialect: str) -> tuple[Migration, ...]:
    folder = resources.files("wasmlet.store").joinpath(f"sql/{dialect}")
    found = []
    for entry in folder.iterdir():
        match = _MIGRATION.match(entry.name)
        if match:
            found.append(Migration(int(match.group(1)), entry.name, entry.read_text("utf-8")))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if versions != list(range(1, len(versions) + 1)):
        raise RuntimeError(f"{dialect} migrations are not numbered 1, 2, ...: {versions}")
    return tuple(found)
