"""The function registry: deploy, read, change and delete functions.

Validation and compilation come before any write, so a refused deploy stores
nothing. Reads on the invocation path go through a short-lived cache. Every write
announces the function's name in its own transaction (PostgreSQL NOTIFY, delivered
at commit; see `changes.py`), so every node drops its entry at once; `cache_ttl_s`
bounds how long a missed announcement goes unnoticed. While the database cannot be
reached an entry is served stale, up to `max_stale_s` after it was last read.
"""

from __future__ import annotations

import asyncio
import enum
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from wasmlet.errors import (
    DbUnavailable,
    FunctionError,
    FunctionNotFound,
    InvalidConfig,
    NotFound,
)
from wasmlet.registry.models import FunctionConfig, FunctionRecord, VersionRecord
from wasmlet.registry.names import validate_name
from wasmlet.registry.runtimes import runtime_of
from wasmlet.registry.trigger_setup import TriggerSetup
from wasmlet.runtime.compiler import CompiledModule, ModuleCompiler
from wasmlet.store.base import Store
from wasmlet.telemetry.logs import get_logger
from wasmlet.validation import field_path

Clock = Callable[[], float]
CHANGES_CHANNEL = "wasmlet_registry"
MAX_STALE_S = 300.0
VERSIONS_KEPT = 20
MAX_VERSION = 2**31 - 1
MODULE_PATHS_KEPT = 4096


class Miss(enum.Enum):
    """Not in the cache, or too old to serve: read the database."""

    MISS = enum.auto()


@dataclass(frozen=True, slots=True)
class _Entry:
    read_at: float
    record: FunctionRecord | None


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
        triggers: TriggerSetup,
        limits: OperatorLimits,
        clock: Clock,
        cache_ttl_s: float = 1.0,
        max_stale_s: float = MAX_STALE_S,
        changes_channel: str = CHANGES_CHANNEL,
        versions_kept: int = VERSIONS_KEPT,
    ) -> None:
        self._store = store
        self._compiler = compiler
        self._module_paths: dict[str, str] = {}  # module key -> path, read per invocation
        self._triggers = triggers
        self._limits = limits
        self._clock = clock
        self._ttl = cache_ttl_s
        self._max_stale_s = max(max_stale_s, cache_ttl_s)
        self._channel = changes_channel
        self._versions_kept = max(1, versions_kept)
        self._cache: dict[str, _Entry] = {}
        self._epoch = 0  # bumped by every forget: a read that began before it is not kept
        self._db_retry_at = 0.0  # after a failed read, entries are served stale until then
        self._serving_stale = False
        self._lock = threading.Lock()
        self._reads: dict[str, asyncio.Task[FunctionRecord | None]] = {}
        self._log = get_logger("registry")

    def deploy(
        self,
        name: object,
        wasm: bytes,
        config: object = None,
        triggers: object = None,
        *,
        rolled_back_from: int | None = None,
    ) -> tuple[FunctionRecord, bool]:
        """Create or redeploy `name`; the record and whether it is new. Each deploy is
        a new version; the newest `versions_kept` are kept, older ones are pruned."""
        valid_name = validate_name(name)
        previous = self.find(valid_name, cached=False)
        parsed, trigger_list = self._effective(previous, config, triggers)
        compiled = self._compiler.compile(wasm)
        # Two databases, two transactions: the capture triggers (application database)
        # first, then the version and its schedules (platform store). If the second
        # fails, the first is undone: the previous version keeps serving, with its triggers.
        self._triggers.capture(valid_name, trigger_list)
        try:
            created = self._store_version(
                valid_name, wasm, compiled, parsed, trigger_list, rolled_back_from
            )
        except BaseException:
            self._restore_capture(valid_name, previous)
            raise
        return self.get(valid_name, cached=False), created

    def effective(
        self, name: object, config: object = None, triggers: object = None
    ) -> tuple[FunctionConfig, list[dict[str, Any]]]:
        """The configuration and triggers a deploy of `name` with these fields would keep:
        each one given is checked, each one left out is the live version's."""
        return self._effective(self.find(validate_name(name), cached=False), config, triggers)

    def _effective(
        self, previous: FunctionRecord | None, config: object, triggers: object
    ) -> tuple[FunctionConfig, list[dict[str, Any]]]:
        if config is None and previous is not None:
            parsed = previous.config
        else:
            parsed = self._check_limits(FunctionConfig.parse(config))
        if triggers is None and previous is not None:
            return parsed, previous.triggers
        return parsed, self._triggers.validate(triggers)

    def _restore_capture(self, name: str, previous: FunctionRecord | None) -> None:
        try:
            self._triggers.capture(name, previous.triggers if previous is not None else [])
        except Exception as exc:  # the deploy's own error is the one to report
            self._log.error(
                "deploy failed and its capture triggers could not be restored",
                function=name,
                error=str(exc),
            )

    def _store_version(
        self,
        name: str,
        wasm: bytes,
        compiled: CompiledModule,
        config: FunctionConfig,
        triggers: list[dict[str, Any]],
        rolled_back_from: int | None,
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
                triggers=triggers_json,
                runtime=runtime_of(wasm),
                size=len(wasm),
                rolled_back_from=rolled_back_from,
                now=now,
            )
            store.execute("prune_versions", name=name, newest=version, keep=self._versions_kept)
            self._triggers.sync_schedules(name, triggers)
            self._announce(name)
        self.forget(name)
        return bumped is None

    def versions(
        self, name: str, limit: int, before: int | None = None
    ) -> tuple[FunctionRecord, list[VersionRecord]]:
        """The live record and up to `limit` kept versions below `before`, newest first."""
        record = self.get(name, cached=False)
        rows = self._store.fetch_all(
            "list_versions",
            name=name,
            before=MAX_VERSION if before is None else before,
            limit=limit,
        )
        return record, [VersionRecord.from_row(row) for row in rows]

    def rollback(self, name: str, version: int | None = None) -> FunctionRecord:
        """Make a kept version's module, config and triggers live again, as a new
        version (history stays linear), through `deploy`: the same validation, trigger
        installation with its compensation, and change announcement to every node.
        `version` None: the one before the live one."""
        current = self.get(name, cached=False)
        if version is None:
            row = self._store.fetch_one("previous_version", name=name, below=current.version)
            if row is None or row["version"] is None:
                raise NotFound(
                    f"Version not found: {name} has no kept version before its live "
                    f"version {current.version}",
                    function=name,
                )
            version = int(row["version"])
        stored = self._store.fetch_one("get_version", name=name, version=version)
        if stored is None:
            raise NotFound(
                f"Version not found: {name} has no version {version} (never deployed, or "
                f"pruned: the newest {self._versions_kept} are kept)",
                function=name,
            )
        config = FunctionConfig.from_stored(stored["config"]).model_dump()
        triggers = None if stored["triggers"] is None else json.loads(stored["triggers"])
        record, _ = self.deploy(
            name, bytes(stored["wasm"]), config, triggers, rolled_back_from=version
        )
        return record

    def cached(self, name: str) -> FunctionRecord | Literal[Miss.MISS] | None:
        """The cached record (None: known not to exist) if it may be served without a
        read: fresh, or stale within the bound while the database is failing. Never
        touches the database, so the event loop may call it."""
        entry = self._cache.get(name)
        if entry is None:
            return Miss.MISS
        now = self._clock()
        age = now - entry.read_at
        if age < self._ttl or (age < self._max_stale_s and now < self._db_retry_at):
            return entry.record
        return Miss.MISS

    async def lookup(self, name: str) -> FunctionRecord | None:
        """`find` for the event loop: a hit costs no thread, and concurrent misses of one
        name share one read in a thread (a burst after the TTL is one query, not one per
        call queued in the thread pool)."""
        hit = self.cached(name)
        if hit is not Miss.MISS:
            return hit
        task = self._reads.get(name)
        if task is None:
            task = asyncio.create_task(asyncio.to_thread(self.find, name))
            self._reads[name] = task
            task.add_done_callback(lambda done: self._read_done(name, done))
        return await asyncio.shield(task)

    def _read_done(self, name: str, task: asyncio.Task[FunctionRecord | None]) -> None:
        self._reads.pop(name, None)
        if not task.cancelled():
            task.exception()  # retrieved: each waiter raises it, if any still waits

    def find(self, name: str, *, cached: bool = True) -> FunctionRecord | None:
        """The function's record, or None; DbUnavailable only when the database cannot
        be read and no entry younger than the staleness bound is cached."""
        if cached:
            hit = self.cached(name)
            if hit is not Miss.MISS:
                return hit
        epoch = self._epoch
        try:
            row = self._store.fetch_one("get_function", name=name)
        except DbUnavailable:
            if not cached:
                raise
            return self._stale(name)
        record = FunctionRecord.from_row(row) if row else None
        if self._serving_stale:
            self._serving_stale = False
            self._log.info("database available again: registry entries read afresh")
        with self._lock:
            if epoch == self._epoch:
                self._cache[name] = _Entry(self._clock(), record)
        return record

    def _stale(self, name: str) -> FunctionRecord | None:
        now = self._clock()
        self._db_retry_at = now + self._ttl
        if not self._serving_stale:
            self._serving_stale = True
            self._log.warning(
                "database unavailable: serving registry entries stale",
                max_stale_s=self._max_stale_s,
            )
        entry = self._cache.get(name)
        if entry is None or now - entry.read_at >= self._max_stale_s:
            raise DbUnavailable("Database unavailable: the function registry cannot be read")
        return entry.record

    def get(self, name: str, *, cached: bool = True) -> FunctionRecord:
        record = self.find(name, cached=cached)
        if record is None:
            raise FunctionNotFound(f"Function not found: {name}", function=name)
        return record

    def page(self, after: str, limit: int) -> list[FunctionRecord]:
        """At most `limit` functions in name order, after the name `after` (keyset)."""
        rows = self._store.fetch_all("list_functions_page", after_name=after, limit=limit)
        return [FunctionRecord.from_row(row) for row in rows]

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
        with self._store.transaction():
            self._store.execute(
                "update_function_config",
                name=name,
                config=config.model_dump_json(),
                enabled=enabled,
                now=self._clock(),
            )
            self._announce(name)
        self.forget(name)
        return self.get(name, cached=False)

    def delete(self, name: str) -> None:
        """As `deploy`: the capture triggers go first, and come back if the rows stay."""
        record = self.get(name, cached=False)
        self._triggers.capture(name, [])
        try:
            with self._store.transaction():
                self._triggers.sync_schedules(name, [])
                self._store.execute("delete_versions", name=name)
                self._store.execute("delete_function", name=name)
                self._announce(name)
        except BaseException:
            self._restore_capture(name, record)
            raise
        self.forget(name)

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
            # A restored module (runtime/restore.py) is compiled whole in the background.
            if not self._compiler.is_cached(key) or self._compiler.is_restored(key):
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
        key = record.module_key
        path = self._module_paths.get(key)
        if path is None:
            if len(self._module_paths) >= MODULE_PATHS_KEPT:
                self._module_paths.clear()
            path = self._module_paths[key] = str(self._compiler.path_for(key))
        return path

    def forget(self, name: str) -> None:
        """Drop `name`'s entry: the next read goes to the database."""
        with self._lock:
            self._epoch += 1
            self._cache.pop(name, None)

    def forget_all(self) -> None:
        with self._lock:
            self._epoch += 1
            self._cache.clear()

    def _announce(self, name: str) -> None:
        """Tell every node that `name` changed, when the calling transaction commits."""
        self._store.execute("announce_function_change", channel=self._channel, name=name)

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
