"""Server settings: flags, then WASMLET_* environment variables, then an optional file.

The file is TOML, named by WASMLET_CONFIG_FILE (or `wasmlet serve --config`). Nothing
is read at import time: `load_settings` is called by the CLI or by a test. It raises
`SettingsError` with one readable line per problem, each naming the setting the way
its source spells it (`--port`, `WASMLET_PORT`, or `port` in the file).
"""

from __future__ import annotations

import difflib
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)
from pydantic_settings import SettingsError as SourceError

from wasmlet.errors import Problem
from wasmlet.validation import label_of, sentence

MB = 1024 * 1024
DAY = 24 * 3600


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="WASMLET_", extra="forbid")

    data_dir: Path = Path(".wasmlet")
    database_url: str | None = None
    app_database_url: str | None = None
    pg_schema: str = Field("wasmlet", pattern=r"^[a-z_][a-z0-9_]{0,40}$")
    app_role: str = Field("wasmlet_app", pattern=r"^[a-z_][a-z0-9_]{0,62}$")
    host: str = "127.0.0.1"
    port: int = Field(8787, ge=0, le=65535)
    service_key: str | None = None
    anon_key: str | None = None
    secrets_key: str | None = None
    # User JWTs (api/users.py; docs/operations.md, "Users: JWT verification").
    jwt_secret: str | None = Field(None, min_length=32)
    jwt_jwks_url: str | None = Field(None, pattern=r"^https?://", max_length=2048)
    jwt_jwks_file: Path | None = None
    jwt_audience: str = "authenticated"  # empty: aud is not checked
    jwt_issuer: str | None = None
    jwt_leeway_s: float = Field(30.0, ge=0, le=300)
    jwt_jwks_refresh_s: float = Field(300.0, ge=10, le=DAY)
    workers: int = Field(default_factory=lambda: os.cpu_count() or 1, ge=1, le=256)

    default_timeout_ms: int = Field(10_000, ge=1)
    max_timeout_ms: int = Field(300_000, ge=1)
    default_memory_mb: int = Field(128, ge=1)
    max_memory_mb: int = Field(1024, ge=1, le=4096)
    global_concurrency: int = Field(100, ge=1)
    max_payload_bytes: int = Field(6 * MB, ge=1)
    max_response_bytes: int = Field(6 * MB, ge=1)
    max_log_bytes: int = Field(64 * 1024, ge=1)
    timeout_grace_ms: int = Field(2_000, ge=0)
    retry_after_s: int = Field(1, ge=1)
    max_query_result_bytes: int = Field(1024 * 1024, ge=1024)
    db_breaker_cooldown_s: float = Field(2.0, gt=0)
    # Outbound HTTP from functions (outbound/gateway.py).
    http_max_in_flight: int = Field(64, ge=1, le=10_000)
    http_max_in_flight_per_function: int = Field(16, ge=1, le=10_000)
    http_max_request_bytes: int = Field(1 * MB, ge=0, le=7 * MB)
    http_max_response_bytes: int = Field(4 * MB, ge=1024, le=64 * MB)
    breaker_failure_rate: float = Field(0.5, gt=0, lt=1)
    breaker_window_s: float = Field(300.0, gt=0)
    breaker_min_calls: int = Field(10, ge=1)
    breaker_cooldown_s: float = Field(30.0, gt=0)
    dispatch_poll_ms: int = Field(10, ge=1)
    job_lease_s: float = Field(30.0, gt=0)
    # Done jobs (async results, delivered events) are kept this long; dead letters stay.
    job_retention_s: float = Field(DAY, ge=60)
    job_prune_interval_s: float = Field(60.0, gt=0)
    job_prune_batch: int = Field(1000, ge=1, le=100_000)
    scheduler_tick_ms: int = Field(1000, ge=10)
    dispatch_concurrency: int | None = Field(None, ge=1)
    # How long a node serves a function it knows while the database cannot be read.
    registry_max_stale_s: float = Field(300.0, ge=0, le=7 * DAY)
    # Versions kept per function (`versions`, `rollback`); older ones are pruned at deploy.
    versions_kept: int = Field(20, ge=1, le=1000)
    # Connections in the platform store's pool (PostgreSQL; store/postgres.py).
    store_pool_size: int = Field(6, ge=1, le=100)
    # Deploy-time compilation, in child processes (runtime/compiler.py).
    compile_timeout_s: float = Field(30.0, gt=0, le=3600)
    compile_memory_mb: int = Field(512, ge=192, le=65536)
    compile_concurrency: int = Field(
        default_factory=lambda: max(1, (os.cpu_count() or 1) // 2), ge=1, le=64
    )
    compile_queue: int = Field(8, ge=0, le=1024)
    # A snapshot module (JavaScript, TypeScript) is deployed as the shared compiled engine
    # plus its state, and compiled whole in the background (runtime/restore.py).
    compile_restore_snapshots: bool = True
    # Several nodes on one PostgreSQL database (docs/operations.md, "Running several nodes").
    node_address: str | None = Field(None, max_length=255)
    node_heartbeat_s: float = Field(2.0, gt=0, le=60)
    node_forget_s: float = Field(300.0, gt=0)
    breaker_sync_s: float = Field(1.0, gt=0, le=60)
    log_level: str = "info"
    log_format: Literal["auto", "json", "console"] = "auto"  # auto: console on a TTY
    # Invocation history and function logs (observability/history.py), per function.
    history: bool = True
    log_retention_lines: int = Field(10_000, ge=1)
    log_retention_s: float = Field(7 * DAY, gt=0)
    invocation_retention: int = Field(10_000, ge=1)
    invocation_retention_s: float = Field(7 * DAY, gt=0)
    history_prune_interval_s: float = Field(60.0, gt=0)
    # In-server alerts (observability/alerts.py): how often they are evaluated, and the
    # platform thresholds (deploy/prometheus/alerts.yml has the defaults).
    alert_interval_s: float = Field(15.0, gt=0, le=3600)
    alert_scheduler_stale_s: float = Field(60.0, gt=0)
    alert_queue_age_s: float = Field(300.0, gt=0)
    alert_node_silent_s: float = Field(60.0, gt=0)

    @model_validator(mode="after")
    def _defaults_within_maximums(self) -> Settings:
        if self.default_timeout_ms > self.max_timeout_ms:
            raise ValueError("default_timeout_ms is over max_timeout_ms")
        if self.default_memory_mb > self.max_memory_mb:
            raise ValueError("default_memory_mb is over max_memory_mb")
        return self

    @property
    def platform_db_path(self) -> Path:
        return self.data_dir / "platform.db"

    @property
    def app_db_path(self) -> Path:
        return self.data_dir / "app.db"

    @property
    def uses_postgres(self) -> bool:
        return bool(self.database_url) and str(self.database_url).startswith(
            ("postgresql://", "postgres://")
        )

    @property
    def module_cache_dir(self) -> Path:
        return self.data_dir / "modules"

    @property
    def keys_path(self) -> Path:
        return self.data_dir / "keys.json"

    @property
    def secrets_key_path(self) -> Path:
        return self.data_dir / "secrets.key"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        config_file = os.environ.get("WASMLET_CONFIG_FILE")
        if config_file:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=Path(config_file)))
        return tuple(sources)


class SettingsError(Exception):
    """Settings that cannot start a server: one `Problem` per thing wrong."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("; ".join(p.problem for p in problems))

    def lines(self) -> list[str]:
        return [problem.problem for problem in self.problems]


def load_settings(**flags: Any) -> Settings:
    """Settings from flags (None means not given), the environment and the file."""
    given = {key: value for key, value in flags.items() if value is not None}
    config_file = given.pop("config_file", None)
    if config_file is not None:
        os.environ["WASMLET_CONFIG_FILE"] = str(config_file)
    file = os.environ.get("WASMLET_CONFIG_FILE") or None
    if file is not None and not Path(file).is_file():
        raise SettingsError([Problem("config_file", f"settings file {file} does not exist")])
    try:
        return Settings(**given)
    except ValidationError as exc:
        raise SettingsError(_problems(exc, given, os.environ, file)) from None
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError([Problem("config_file", f"settings file {file}: {exc}")]) from None
    except SourceError as exc:
        raise SettingsError([Problem("settings", str(exc))]) from None


def _problems(
    exc: ValidationError, flags: Mapping[str, Any], env: Mapping[str, str], file: str | None
) -> list[Problem]:
    found = []
    for error in exc.errors():
        field = label_of(error["loc"])
        name = field.split(".")[0]
        said, prefix = field, ""
        if name in flags:
            said = "--" + field.replace("_", "-")
        elif name and f"WASMLET_{name.upper()}" in env:
            said = f"WASMLET_{field.upper()}"
        elif file:
            prefix = f"settings file {file}: "
        if error["type"] == "extra_forbidden":
            text = f"{said} is not a known setting{_suggestion(name)}"
        else:
            text = sentence(said, error)
        found.append(Problem(field or "settings", prefix + text))
    return found


def _suggestion(name: str) -> str:
    close = difflib.get_close_matches(name, Settings.model_fields, n=1)
    return f" (did you mean {close[0]}?)" if close else ""
