"""`wasmlet.toml`: the project manifest, parsed with tomllib into strict pydantic models.

Unknown keys, wrong types and bad values are a `ManifestError` naming the key's path
(`functions.hello.config.timeout_mss`) and, where it can be found, its line and column.
The `config` table is the server's own `FunctionConfig` (the same rules as the deploy
route), so a value the server would refuse is refused here, before any request."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from wasmlet.errors import FunctionError
from wasmlet.registry.models import FunctionConfig
from wasmlet.registry.names import validate_name

MANIFEST_NAME = "wasmlet.toml"
MAX_MANIFEST_BYTES = 1024 * 1024
MAX_FUNCTIONS = 500
SCRIPT_SUFFIXES = (".js", ".mjs", ".ts", ".mts")
_STRICT = ConfigDict(extra="forbid", strict=True)
_TOML_POSITION = re.compile(r"\(at line (\d+), column (\d+)\)")


class ManifestError(Exception):
    """A manifest that cannot be used: `path:line:column: message`."""

    def __init__(
        self, file: Path, message: str, line: int | None = None, column: int | None = None
    ) -> None:
        self.file, self.message, self.line, self.column = file, message, line, column
        where = str(file)
        if line is not None:
            where += f":{line}" + (f":{column}" if column is not None else "")
        super().__init__(f"{where}: {message}")


class ServerSection(BaseModel):
    """Where the project's server is. Never a key: the name of an environment variable
    that holds it, or a server data dir whose keys.json is read."""

    model_config = _STRICT

    url: str | None = Field(None, pattern=r"^https?://[^\s]+$", max_length=2048)
    key_env: str | None = Field(None, pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
    data_dir: str | None = Field(None, min_length=1, max_length=4096)


class HttpTrigger(BaseModel):
    model_config = _STRICT

    type: Literal["http"]
    handler: str | None = None


class ScheduleTrigger(BaseModel):
    model_config = _STRICT

    type: Literal["schedule"]
    cron: str = Field(min_length=1, max_length=256)
    timezone: str | None = Field(None, max_length=64)
    catch_up: Literal["none", "latest", "all"] | None = None
    catch_up_cap: int | None = Field(None, ge=1, le=10_000)
    handler: str | None = None


class DatabaseTrigger(BaseModel):
    model_config = _STRICT

    type: Literal["database"]
    table: str = Field(min_length=1, max_length=127)
    events: list[Literal["INSERT", "UPDATE", "DELETE"]] | None = None
    handler: str | None = None


Trigger = Annotated[HttpTrigger | ScheduleTrigger | DatabaseTrigger, Field(discriminator="type")]


def _http_only() -> list[Trigger]:
    return [HttpTrigger(type="http")]


class FunctionSpec(BaseModel):
    """One `[functions.NAME]` table."""

    model_config = _STRICT

    source: str | None = Field(None, min_length=1, max_length=4096)
    wasm: str | None = Field(None, min_length=1, max_length=4096)
    build: str | None = Field(None, min_length=1, max_length=8192)
    watch: list[str] = Field(default_factory=list, max_length=100)
    config: FunctionConfig = Field(default_factory=FunctionConfig)
    triggers: list[Trigger] = Field(default_factory=_http_only, max_length=64)
    env: dict[str, str] = Field(default_factory=dict)
    secrets: list[str] = Field(default_factory=list, max_length=128)
    allowed_hosts: list[str] = Field(default_factory=list)

    @field_validator("source")
    @classmethod
    def _script(cls, value: str | None) -> str | None:
        if value is not None and not value.endswith(SCRIPT_SUFFIXES):
            suffixes = ", ".join(SCRIPT_SUFFIXES)
            raise ValueError(f"must be a {suffixes} file (use wasm = for a module)")
        return value

    @model_validator(mode="after")
    def _one_module(self) -> FunctionSpec:
        if (self.source is None) == (self.wasm is None):
            raise ValueError("give exactly one of source (JavaScript/TypeScript) or wasm")
        if self.build is not None and self.wasm is None:
            raise ValueError("build needs wasm: the file the build command writes")
        if "env" in self.config.model_fields_set or "allowed_hosts" in (
            self.config.model_fields_set
        ):
            raise ValueError("set env and allowed_hosts in the function's table, not in config")
        # the server's rules for env names and host entries
        FunctionConfig.model_validate({"env": self.env, "allowed_hosts": self.allowed_hosts})
        return self

    def deploy_config(self) -> dict[str, Any]:
        """The whole config the deploy route gets: the manifest is the truth."""
        config = self.config.model_dump(exclude_unset=True)
        config["env"] = dict(self.env)
        config["allowed_hosts"] = list(self.allowed_hosts)
        return config

    def deploy_triggers(self) -> list[dict[str, Any]]:
        return [t.model_dump(exclude_none=True) for t in self.triggers]


class Manifest(BaseModel):
    model_config = _STRICT

    server: ServerSection = Field(default_factory=ServerSection)
    functions: dict[str, FunctionSpec] = Field(default_factory=dict, max_length=MAX_FUNCTIONS)

    @field_validator("functions")
    @classmethod
    def _names(cls, functions: dict[str, FunctionSpec]) -> dict[str, FunctionSpec]:
        for name in functions:
            try:
                validate_name(name)
            except FunctionError as exc:
                raise ValueError(exc.message) from None
        return functions


class Project:
    """A loaded manifest and the folder it lives in (paths in it are relative to that)."""

    def __init__(self, path: Path, manifest: Manifest) -> None:
        self.path = path
        self.root = path.parent
        self.manifest = manifest

    def file(self, relative: str) -> Path:
        return (self.root / relative).resolve()


def find_manifest(start: Path | None = None) -> Path | None:
    """The nearest `wasmlet.toml`: in `start` (the current directory) or a parent."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / MANIFEST_NAME
        if candidate.is_file():
            return candidate
    return None


def load_project(path: Path) -> Project:
    try:
        raw = path.read_bytes()[: MAX_MANIFEST_BYTES + 1]
    except OSError as exc:
        raise ManifestError(path, f"cannot be read: {exc.strerror or exc}") from exc
    if len(raw) > MAX_MANIFEST_BYTES:
        raise ManifestError(path, f"is over {MAX_MANIFEST_BYTES} bytes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ManifestError(path, "is not UTF-8") from exc
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        found = _TOML_POSITION.search(message)
        line, column = (int(found.group(1)), int(found.group(2))) if found else (None, None)
        raise ManifestError(path, _TOML_POSITION.sub("", message).strip(), line, column) from exc
    try:
        manifest = Manifest.model_validate(data)
    except ValidationError as exc:
        # an unknown key first: a misspelt key also makes the real one look missing
        first = sorted(exc.errors(), key=lambda e: e["type"] != "extra_forbidden")[0]
        loc = tuple(first["loc"])
        key = _dotted(loc)
        if first["type"] == "extra_forbidden":
            message = f"unknown key {key}"
            if key == "server.key":
                message += (
                    " (no key belongs in wasmlet.toml: name the environment variable that "
                    "holds it with key_env, or a server data dir with data_dir)"
                )
        else:
            message = f"{key}: {first['msg']}" if key else first["msg"]
        line, column = locate(text, loc)
        raise ManifestError(path, message, line, column) from exc
    return Project(path, manifest)


def _dotted(loc: tuple[int | str, ...]) -> str:
    parts: list[str] = []
    for item in loc:
        if isinstance(item, int):
            parts[-1:] = [f"{parts[-1] if parts else ''}[{item}]"]
        elif item in ("http", "schedule", "database", "function-after"):
            continue  # pydantic's union tag and validator names, not keys
        else:
            parts.append(item)
    return ".".join(parts)


def locate(text: str, loc: tuple[int | str, ...]) -> tuple[int | None, int | None]:
    """Best effort: the line and column where the key at `loc` is written.

    The deepest `[table]` or `[[array]]` header that is a prefix of the path is found
    (the n-th for an array index), then the key's `name =` line inside that table."""
    keys = [str(item) for item in loc if isinstance(item, str)]
    indexes = [item for item in loc if isinstance(item, int)]
    lines = text.splitlines()
    start, end = 0, len(lines)
    header_line: int | None = None
    for depth in range(len(keys), 0, -1):
        header = ".".join(keys[:depth])
        pattern = re.compile(r"^\s*\[\[?\s*" + re.escape(header) + r"\s*\]\]?\s*(#.*)?$")
        hits = [n for n, line in enumerate(lines) if pattern.match(line)]
        if not hits:
            continue
        pick = indexes[0] if indexes and lines[hits[0]].lstrip().startswith("[[") else 0
        n = hits[min(pick, len(hits) - 1)]
        header_line, start = n, n + 1
        end = next(
            (m for m in range(start, len(lines)) if lines[m].lstrip().startswith("[")), len(lines)
        )
        break
    if keys:
        key = re.compile(r"^(\s*)(?:[\w.-]+\.)?" + re.escape(keys[-1]) + r"\s*=")
        for n in range(start, end):
            found = key.match(lines[n])
            if found:
                return n + 1, len(found.group(1)) + 1
        inline = re.compile(r"\b" + re.escape(keys[-1]) + r"\s*=")
        for n in range(start, end):
            hit = inline.search(lines[n])
            if hit:
                return n + 1, hit.start() + 1
    if header_line is not None:
        return header_line + 1, 1
    return None, None
