"""The function registry: deploy, read, change and delete functions.

Validation and compilation come before any write, so a refused deploy stores
nothing. Reads on the invocation path go through a short-lived cache, cleared on
every local write; other nodes see a change within `cache_ttl_s`.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from wasmlet.errors import FunctionError, FunctionNotFound, InvalidConfig
from wasmlet.registry.models import FunctionConfig, FunctionRecord
from wasmlet.registry.names import validate_name
from wasmlet.runtime.compiler import CompiledModule, ModuleCompiler
from wasmlet.store.base import Store
from wasmlet.triggers.database import TriggerInstaller
from wasmlet.validation import field_path

Clock = Callable[[], float]


@dataclass(frozen=True, slots=True)
class OperatorLimits:
    max_timeout_ms: int
    max_memory_mb: int
    global_concurrency: int


class Registry:
    def __init__(
        self,
        store: Store,
        compiler: ModuleCompiler,
        triggers: TriggerInstaller,
        limits: OperatorLimits,
        clock: Clock,
        cache_ttl_s: float = 1.0,
    ) -> None:
        self._store = store
        self._compiler = compiler
        self._triggers = triggers
        self._limits = limits
        self._clock = clock
        self._ttl = cache_ttl_s
        self._cache: dict[str, tuple[float, FunctionRecord | None]] = {}
        self._lock = threading.Lock()

    def deploy(
        self, name: object, wasm: bytes, config: object = None, triggers: object = None
    ) -> tuple[FunctionRecord, bool]:
        """Create or redeploy `name`; the record and whether it is new."""
        valid_name = validate_name(name)
        previous = self.find(valid_name, cached=False)
        if config is None and previous is not None:
            parsed = previous.config
        else:
            parsed = self._check_limits(FunctionConfig.parse(config))
        if triggers is None and previous is not None:
            trigger_list = previous.triggers
        else:
            trigger_list = self._triggers.validate(triggers)
        compiled = self._compiler.compile(wasm)
        created = self._store_version(valid_name, wasm, compiled, parsed, trigger_list)
        self._triggers.install(valid_name, trigger_list)
        return self.get(valid_name, cached=False), created

    def _store_version(
        self,
        name: str,
        wasm: bytes,
        compiled: CompiledModule,
        config: FunctionConfig,
        triggers: list[dict[str, Any]],
    ) -> bool:
        now = self._clock()
        config_json = config.model_dump_json()
        triggers_json = json.dumps(triggers)
        store = self._store
        with store.transaction():
            store.execute("put_module", key=compiled.key, wasm=wasm, now=now)
            bumped = store.fetch_one(
                "bump_function_version",
                name=name,
                config=config_json,
                triggers=triggers_json,
                now=now,
            )
            if bumped is None:
                store.execute(
                    "insert_function",
                    name=name,
                    enabled=True,
                    config=config_json,
                    triggers=triggers_json,
                    now=now,
                )
                version = 1
            else:
                version = int(bumped["version"])
            store.execute(
                "insert_version",
                name=name,
                version=version,
                module_key=compiled.key,
                config=config_json,
                now=now,
            )
        self._forget(name)
        return bumped is None

    def find(self, name: str, *, cached: bool = True) -> FunctionRecord | None:
        if cached:
            hit = self._cache.get(name)
            if hit is not None and self._clock() - hit[0] < self._ttl:
                return hit[1]
        row = self._store.fetch_one("get_function", name=name)
        record = FunctionRecord.from_row(row) if row else None
        with self._lock:
            self._cache[name] = (self._clock(), record)
        return record

    def get(self, name: str, *, cached: bool = True) -> FunctionRecord:
        record = self.find(name, cached=cached)
        if record is None:
            raise FunctionNotFound(f"Function not found: {name}", function=name)
        return record

    def list(self) -> list[FunctionRecord]:
        return [FunctionRecord.from_row(row) for row in self._store.fetch_all("list_functions")]

    def update(self, name: str, changes: dict[str, Any], field: str = "") -> FunctionRecord:
        """Change config fields (and `enabled`); `field` is where the user wrote them."""
        record = self.get(name, cached=False)
        changes = dict(changes)
        enabled = changes.pop("enabled", record.enabled)
        if not isinstance(enabled, bool):
            raise InvalidConfig("Invalid function configuration: enabled must be true or false")
        config = self._check_limits(record.config.merged(changes, field), field)
        self._store.execute(
            "update_function_config",
            name=name,
            config=config.model_dump_json(),
            enabled=enabled,
            now=self._clock(),
        )
        self._forget(name)
        return self.get(name, cached=False)

    def delete(self, name: str) -> None:
        self.get(name, cached=False)
        self._triggers.remove(name)
        with self._store.transaction():
            self._store.execute("delete_versions", name=name)
            self._store.execute("delete_function", name=name)
        self._forget(name)

    def ensure_compiled(
        self, on_failure: Callable[[str, FunctionError], None] | None = None
    ) -> int:
        """Compile active modules missing from the cache (after an engine upgrade).

        A module that no longer compiles (lower compile limits) is passed to
        `on_failure` and skipped, so one module cannot keep the server from starting.
        """
        compiled = 0
        for row in self._store.fetch_all("active_module_keys"):
            key = row["module_key"]
            if not self._compiler.is_cached(key):
                module = self._store.fetch_one("get_module", key=key)
                if module is None:
                    continue
                try:
                    self._compiler.compile(bytes(module["wasm"]))
                except FunctionError as exc:
                    if on_failure is None:
                        raise
                    on_failure(key, exc)
                    continue
                compiled += 1
        return compiled

    def module_path(self, record: FunctionRecord) -> str:
        return str(self._compiler.path_for(record.module_key))

    def _forget(self, name: str) -> None:
        with self._lock:
            self._cache.pop(name, None)

    def _check_limits(self, config: FunctionConfig, field: str = "config") -> FunctionConfig:
        limits = self._limits
        for name, value, limit, whose in (
            ("timeout_ms", config.timeout_ms, limits.max_timeout_ms, "the operator's maximum"),
            ("memory_mb", config.memory_mb, limits.max_memory_mb, "the operator's maximum"),
            ("max_concurrency", config.max_concurrency, limits.global_concurrency,
             "the global limit"),
        ):  # fmt: skip
            if value is not None and value > limit:
                raise InvalidConfig(
                    f"Invalid function configuration: {field_path(field, name)} must be at "
                    f"most {limit} ({whose})"
                )
        return config
