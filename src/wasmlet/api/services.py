"""The objects a running server is made of, built and closed by the app's lifespan."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from wasmlet.api.keys import ApiKeys, load_or_create_keys
from wasmlet.observability.logs import get_logger
from wasmlet.observability.metrics import Metrics
from wasmlet.registry.registry import OperatorLimits, Registry
from wasmlet.reliability.concurrency import ConcurrencyLimiter
from wasmlet.reliability.invoker import Invoker, RuntimeDefaults
from wasmlet.runtime.compiler import ModuleCompiler
from wasmlet.runtime.pool import WorkerPool
from wasmlet.settings import Settings
from wasmlet.store import Store, open_store


@dataclass
class Services:
    settings: Settings
    keys: ApiKeys
    store: Store
    registry: Registry
    pool: WorkerPool
    invoker: Invoker
    metrics: Metrics

    @classmethod
    async def start(cls, settings: Settings) -> Services:
        log = get_logger("startup")
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        keys = load_or_create_keys(settings.keys_path, settings.service_key, settings.anon_key)
        store = open_store(settings.database_url, settings.platform_db_path)
        applied = store.migrate()
        compiler = ModuleCompiler(Path(settings.module_cache_dir))
        registry = Registry(
            store,
            compiler,
            OperatorLimits(
                max_timeout_ms=settings.max_timeout_ms,
                max_memory_mb=settings.max_memory_mb,
                global_concurrency=settings.global_concurrency,
            ),
            clock=time.time,
        )
        recompiled = registry.ensure_compiled()
        metrics = Metrics()
        worker_log = get_logger("worker")

        def on_worker_event(event: str, pid: int, reason: str) -> None:
            if event == "started":
                worker_log.info("worker started", pid=pid)
            else:
                metrics.worker_restarts.labels(event).inc()
                worker_log.error(f"worker {event}", pid=pid, error=reason)

        pool = WorkerPool(
            settings.workers,
            grace_s=settings.timeout_grace_ms / 1000,
            on_event=on_worker_event,
        )
        await pool.start()
        invoker = Invoker(
            pool,
            ConcurrencyLimiter(settings.global_concurrency),
            metrics,
            RuntimeDefaults(
                timeout_ms=settings.default_timeout_ms,
                memory_mb=settings.default_memory_mb,
                max_response_bytes=settings.max_response_bytes,
                max_log_bytes=settings.max_log_bytes,
                retry_after_s=settings.retry_after_s,
            ),
        )
        log.info(
            "server ready",
            database=store.dialect,
            migrations_applied=applied,
            modules_recompiled=recompiled,
            workers=settings.workers,
        )
        return cls(settings, keys, store, registry, pool, invoker, metrics)

    async def close(self) -> None:
        await self.pool.close()
        self.store.close()
