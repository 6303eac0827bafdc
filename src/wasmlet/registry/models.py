"""Function configuration and records.

Configuration is validated strictly: no coercion (`"10"` is not an integer, `1` is not
`true`), no unknown fields, every number bounded, and every string that reaches a
header or the guest's environment checked for what those can carry. A refusal is
`InvalidConfig` naming the field as the user wrote it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_core import PydanticCustomError

from wasmlet.errors import InvalidConfig, Problem, quoted
from wasmlet.outbound.allowlist import MAX_ENTRIES, parse_entry
from wasmlet.telemetry.logs import get_logger
from wasmlet.validation import field_path, problems

ContentType = Literal["application/json", "text/plain", "application/octet-stream"]
DAY_S = 86_400.0
MAX_TIMEOUT_MS = 86_400_000
MAX_MEMORY_MB = 4096  # wasm32 addresses 4 GiB
MAX_CONCURRENCY = 100_000
MAX_ENV_VARS = 128
MAX_ENV_BYTES = 64 * 1024
MAX_HEADER_VALUE = 256
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")
RESERVED_ENV_PREFIX = "WASMLET_"
HEADER_VALUE = re.compile(r"[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?")


def _env_name(name: str) -> str:
    if not ENV_NAME.fullmatch(name):
        raise PydanticCustomError(
            "env_name",
            f"name {quoted(name)} is not a valid variable name (letters, digits and '_', "
            "not starting with a digit, at most 128 characters)",
        )
    if name.upper().startswith(RESERVED_ENV_PREFIX):
        raise PydanticCustomError(
            "env_name", f"name {quoted(name)} is reserved: WASMLET_ variables are the platform's"
        )
    return name


def _env_value(value: str) -> str:
    if "\0" in value:
        raise PydanticCustomError("env_value", "contains a NUL character")
    return value


def _allowed_host(entry: str) -> str:
    try:
        parse_entry(entry)
    except ValueError as exc:
        raise ValueError(f"{quoted(entry)}: {exc}") from None
    return entry


EnvName = Annotated[str, AfterValidator(_env_name)]
AllowedHost = Annotated[str, AfterValidator(_allowed_host)]
EnvValue = Annotated[str, AfterValidator(_env_value)]
_STRICT = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)


class RetryConfig(BaseModel):
    """Retries of asynchronous invocations (database events, schedules, async HTTP)."""

    model_config = _STRICT

    max_retries: int = Field(3, ge=0, le=20)
    backoff_ms: int = Field(1000, ge=0, le=3_600_000)
    multiplier: float = Field(2.0, ge=1.0, le=10.0)
    max_backoff_ms: int = Field(60_000, ge=0, le=86_400_000)
    jitter: float = Field(0.1, ge=0.0, le=1.0)


class BreakerConfig(BaseModel):
    """Per-function circuit breaker; a None field takes the operator's default."""

    model_config = _STRICT

    enabled: bool = True
    failure_rate: float | None = Field(None, gt=0.0, lt=1.0)
    window_s: float | None = Field(None, gt=0, le=DAY_S)
    min_calls: int | None = Field(None, ge=1, le=MAX_CONCURRENCY)
    cooldown_s: float | None = Field(None, gt=0, le=DAY_S)


class FunctionConfig(BaseModel):
    """What a user may set per function; None means the operator's default."""

    model_config = _STRICT

    timeout_ms: int | None = Field(None, ge=1, le=MAX_TIMEOUT_MS)
    memory_mb: int | None = Field(None, ge=1, le=MAX_MEMORY_MB)
    max_concurrency: int | None = Field(None, ge=1, le=MAX_CONCURRENCY)
    public: bool = False
    verify_jwt: bool = True
    env: dict[EnvName, EnvValue] = Field(default_factory=dict)
    content_type: ContentType | None = None
    response_content_type: str = "text/plain; charset=utf-8"
    retry: RetryConfig = Field(default_factory=RetryConfig)
    circuit_breaker: BreakerConfig = Field(default_factory=BreakerConfig)
    allowed_hosts: list[AllowedHost] = Field(default_factory=list, max_length=MAX_ENTRIES)

    @field_validator("env")
    @classmethod
    def _env_size(cls, env: dict[str, str]) -> dict[str, str]:
        if len(env) > MAX_ENV_VARS:
            raise PydanticCustomError("env", f"has more than {MAX_ENV_VARS} variables")
        size = sum(len(name.encode()) + len(value.encode()) + 2 for name, value in env.items())
        if size > MAX_ENV_BYTES:
            raise PydanticCustomError("env", f"is over {MAX_ENV_BYTES} bytes in all")
        return env

    @field_validator("response_content_type")
    @classmethod
    def _header_value(cls, value: str) -> str:
        if len(value) > MAX_HEADER_VALUE or not HEADER_VALUE.fullmatch(value):
            raise PydanticCustomError(
                "header_value",
                f"must be a header value: visible ASCII with inner spaces, no CR or LF, "
                f"at most {MAX_HEADER_VALUE} characters",
            )
        return value

    @classmethod
    def parse(cls, raw: object, field: str = "config") -> FunctionConfig:
        """A user's config; `field` is where they wrote it, for the message."""
        if raw is None:
            raw = {}
        if not isinstance(raw, dict):
            raise InvalidConfig(f"Invalid function configuration: {field} must be an object")
        try:
            return cls.model_validate(raw)
        except ValidationError as exc:
            raise InvalidConfig(
                f"Invalid function configuration: {_summary(exc, field)}",
                problems=_problems(exc, field),
            ) from exc

    @classmethod
    def from_stored(cls, text: str) -> FunctionConfig:
        """A stored config; a value written before a rule existed falls back to its default."""
        try:
            return cls.model_validate_json(text)
        except ValidationError:
            pass
        data = json.loads(text)
        for _ in range(20):
            try:
                return cls.model_validate(data)
            except ValidationError as exc:
                for error in exc.errors():
                    _drop(data, error["loc"])
                get_logger("registry").warning(
                    "stored config field reset to its default",
                    error=_summary(exc, "config"),
                )
        return cls()

    def merged(self, changes: dict[str, Any], field: str = "") -> FunctionConfig:
        return FunctionConfig.parse({**self.model_dump(), **changes}, field)


def _problems(exc: ValidationError, field: str) -> list[Problem]:
    def path(loc: Sequence[int | str]) -> str:
        return field_path(field, *loc)

    return problems(exc.errors(), field_of=path, said_as=path)


def _summary(exc: ValidationError, field: str) -> str:
    return "; ".join(problem.problem for problem in _problems(exc, field)[:3])


def _drop(data: Any, loc: tuple[int | str, ...]) -> None:
    """Remove the value at `loc` (a dict key's error removes its entry)."""
    if loc and loc[-1] == "[key]":
        loc = loc[:-1]
    for key in loc[:-1]:
        if not isinstance(data, dict) or key not in data:
            return
        data = data[key]
    if isinstance(data, dict) and loc:
        data.pop(loc[-1], None)


@dataclass(frozen=True, slots=True)
class FunctionRecord:
    name: str
    version: int
    enabled: bool
    config: FunctionConfig
    triggers: list[dict[str, Any]]
    module_key: str
    created_at: float
    updated_at: float

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> FunctionRecord:
        return cls(
            name=row["name"],
            version=int(row["version"]),
            enabled=bool(row["enabled"]),
            config=FunctionConfig.from_stored(row["config"]),
            triggers=json.loads(row["triggers"]),
            module_key=row["module_key"],
            created_at=float(row["created_at"]),
            updated_at=float(row["updated_at"]),
        )

    def public_view(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "enabled": self.enabled,
            "config": self.config.model_dump(),
            "triggers": self.triggers,
            "module_sha256": self.module_key,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }


@dataclass(frozen=True, slots=True)
class VersionRecord:
    """One kept version of a function, as `versions` lists it."""

    version: int
    module_key: str
    runtime: str | None  # None: stored before runtimes were recorded
    size: int | None
    rolled_back_from: int | None
    created_at: float

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> VersionRecord:
        size = row["size"]
        rolled = row["rolled_back_from"]
        return cls(
            version=int(row["version"]),
            module_key=row["module_key"],
            runtime=row["runtime"],
            size=None if size is None else int(size),
            rolled_back_from=None if rolled is None else int(rolled),
            created_at=float(row["created_at"]),
        )

    def public_view(self, live_version: int) -> dict[str, Any]:
        return {
            "version": self.version,
            "live": self.version == live_version,
            "created_at": datetime.fromtimestamp(self.created_at, UTC).isoformat(
                timespec="milliseconds"
            ),
            "runtime": self.runtime,
            "module_sha256": self.module_key,
            "size_bytes": self.size,
            "rolled_back_from": self.rolled_back_from,
        }
