"""Function configuration and records."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from wasmlet.errors import InvalidConfig
from wasmlet.validation import label_of, problems

ContentType = Literal["application/json", "text/plain", "application/octet-stream"]


class RetryConfig(BaseModel):
    """Retries of asynchronous invocations (database events, schedules, async HTTP)."""

    model_config = ConfigDict(extra="forbid")

    max_retries: int = Field(3, ge=0, le=20)
    backoff_ms: int = Field(1000, ge=0, le=3_600_000)
    multiplier: float = Field(2.0, ge=1.0, le=10.0)
    max_backoff_ms: int = Field(60_000, ge=0, le=86_400_000)
    jitter: float = Field(0.1, ge=0.0, le=1.0)


class BreakerConfig(BaseModel):
    """Per-function circuit breaker; a None field takes the operator's default."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    failure_rate: float | None = Field(None, gt=0.0, lt=1.0)
    window_s: float | None = Field(None, gt=0)
    min_calls: int | None = Field(None, ge=1)
    cooldown_s: float | None = Field(None, gt=0)


class FunctionConfig(BaseModel):
    """What a user may set per function; None means the operator's default."""

    model_config = ConfigDict(extra="forbid")

    timeout_ms: int | None = Field(None, ge=1)
    memory_mb: int | None = Field(None, ge=1)
    max_concurrency: int | None = Field(None, ge=1)
    public: bool = False
    env: dict[str, str] = Field(default_factory=dict)
    content_type: ContentType | None = None
    response_content_type: str = "text/plain; charset=utf-8"
    retry: RetryConfig = Field(default_factory=RetryConfig)
    circuit_breaker: BreakerConfig = Field(default_factory=BreakerConfig)

    @classmethod
    def parse(cls, raw: object) -> FunctionConfig:
        try:
            return cls.model_validate(raw if raw is not None else {})
        except ValidationError as exc:
            found = problems(
                exc.errors(),
                field_of=lambda loc: label_of(("config", *loc)),
                said_as=lambda loc: label_of(loc) or "config",
            )
            summary = "; ".join(p.problem for p in found)
            raise InvalidConfig(
                f"Invalid function configuration: {summary}", problems=found
            ) from exc

    def merged(self, changes: dict[str, Any]) -> FunctionConfig:
        return FunctionConfig.parse({**self.model_dump(), **changes})


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
            config=FunctionConfig.model_validate_json(row["config"]),
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
