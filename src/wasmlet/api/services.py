"""The objects a running server is made of, built and closed by the app's lifespan."""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from wasmlet.api.keys import ApiKeys, load_or_create_keys
from wasmlet.appdb.factory import open_app_database
from wasmlet.appdb.gateway import DatabaseGateway
from wasmlet.observability.alerts import AlertEvaluator
from wasmlet.observability.history import HistoryWriter, open_history
from wasmlet.observability.history_views import HistoryReader
from wasmlet.observability.logs import get_logger
from wasmlet.observability.metrics import Metrics
from wasmlet.observability.store_gauges import StoreGauges
from wasmlet.outbound.gateway import OutboundGateway, OutboundLimits
from wasmlet.registry.registry import OperatorLimits, Registry
from wasmlet.reliability.breaker import BreakerPolicy, BreakerState, CircuitBreaker
from wasmlet.reliability.breakers import FunctionBreakers
from wasmlet.reliability.concurrency import ConcurrencyLimiter
from wasmlet.reliability.invoker import Invoker, RuntimeDefaults
from wasmlet.runtime.compiler import CompileLimits, ModuleCompiler
from wasmlet.runtime.outcome import HostCall
from wasmlet.runtime.pool import WorkerPool
from wasmlet.settings import Settings
from wasmlet.store import Store, open_store
from wasmlet.triggers.database import TriggerInstaller
from wasmlet.triggers.dispatcher import Dispatcher
from wasmlet.triggers.queue import JobQueue
from wasmlet.triggers.scheduler import Scheduler, SchedulerSupervisor
from wasmlet.triggers.schedules import ScheduleBook


@dataclass
class Services:
    settings: Settings
    keys: ApiKeys
    store: Store
    registry: Registry
    pool: WorkerPool
    invoker: Invoker
    metrics: Metrics
    alerts: AlertEvaluator
    gateway: DatabaseGateway
    outbound: OutboundGateway
    queue: JobQueue
    dispatcher: Dispatcher
    schedules: ScheduleBook
    scheduler: SchedulerSupervisor
    history: HistoryWriter | None
    history_reader: HistoryReader
    store_gauges: StoreGauges
    compiler: ModuleCompiler

    @classmethod
    async def start(cls, settings: Settings) -> Services:
        log = get_logger("startup")
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        keys = load_or_create_keys(settings.keys_path, settings.service_key, settings.anon_key)
        store = open_store(
            settings.database_url, settings.platform_db_path, schema=settings.pg_schema
        )
        applied = store.migrate()
        app_db = open_app_database(settings)
        compiler = ModuleCompiler(
            Path(settings.module_cache_dir),
            CompileLimits(
                timeout_s=settings.compile_timeout_s,
                memory_mb=settings.compile_memory_mb,
                concurrency=settings.compile_concurrency,
                queue=settings.compile_queue,
            ),
            keep_spare=True,
        )
        schedules = ScheduleBook(store, clock=time.time)
        registry = Registry(
            store,
            compiler,
            TriggerInstaller(app_db, schedules),
            OperatorLimits(
                max_timeout_ms=settings.max_timeout_ms,
                max_memory_mb=settings.max_memory_mb,
                global_concurrency=settings.global_concurrency,
            ),
            clock=time.time,
        )
        recompiled = registry.ensure_compiled(
            on_failure=lambda key, exc: log.error(
                "stored module does not compile", module_key=key, error=exc.message
            )
        )
        metrics = Metrics()
        worker_log = get_logger("worker")
        breaker_log = get_logger("db_breaker")

        def on_db_breaker(old: BreakerState, new: BreakerState, why: str) -> None:
            breaker_log.warning("database breaker " + str(new), previous=str(old), reason=why)

        gateway = DatabaseGateway(
            app_db,
            CircuitBreaker(
                BreakerPolicy(
                    failure_rate=0.5,
                    window_s=10.0,
                    min_calls=3,
                    cooldown_s=settings.db_breaker_cooldown_s,
                ),
                clock=time.monotonic,
                on_transition=on_db_breaker,
            ),
            threads=max(2, settings.workers),
            max_bytes=settings.max_query_result_bytes,
        )

        outbound = OutboundGateway(
            OutboundLimits(
                max_in_flight=settings.http_max_in_flight,
                max_in_flight_per_function=settings.http_max_in_flight_per_function,
                max_request_bytes=settings.http_max_request_bytes,
                max_response_bytes=settings.http_max_response_bytes,
            ),
            metrics,
        )

        async def host_calls(call: HostCall) -> bytes:
            if call.kind == "http_request":
                return await outbound.handle(call)
            return await gateway.handle(call)

        replacing = 0  # workers lost and not yet replaced: their successor is a restart

        def on_worker_event(event: str, pid: int, reason: str) -> None:
            nonlocal replacing
            if event == "started":
                restart = replacing > 0
                replacing = max(0, replacing - 1)
                worker_log.info(f"worker {'restarted' if restart else 'started'}", pid=pid)
            else:
                replacing += 1
                metrics.worker_restarts.labels(event).inc()
                worker_log.error(f"worker {event}", pid=pid, error=reason)

        pool = WorkerPool(
            settings.workers,
            grace_s=settings.timeout_grace_ms / 1000,
            on_event=on_worker_event,
            host_calls=host_calls,
        )
        await pool.start()
        history = open_history(settings, on_drop=metrics.history_dropped.inc)
        store_gauges = StoreGauges(store, clock=time.time)
        metrics.registry.register(store_gauges)
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
            FunctionBreakers(
                BreakerPolicy(
                    failure_rate=settings.breaker_failure_rate,
                    window_s=settings.breaker_window_s,
                    min_calls=settings.breaker_min_calls,
                    cooldown_s=settings.breaker_cooldown_s,
                ),
                clock=time.monotonic,
                metrics=metrics,
            ),
            history=history,
        )
        log.info(
            "server ready",
            database=store.dialect,
            migrations_applied=applied,
            modules_recompiled=recompiled,
            workers=settings.workers,
        )
        queue = JobQueue(
            store, node=uuid.uuid4().hex, clock=time.time, lease_s=settings.job_lease_s
        )
        if store.dialect == "sqlite":
            queue.requeue_all_running()  # one node per SQLite file: nothing else runs them
        dispatcher = Dispatcher(
            queue,
            app_db,
            registry,
            invoker,
            metrics,
            concurrency=settings.dispatch_concurrency or settings.workers * 2,
            poll_s=settings.dispatch_poll_ms / 1000,
            clock=time.time,
            listen_url=settings.database_url if settings.uses_postgres else None,
            channel=f"wasmlet_outbox_{settings.pg_schema}" if settings.uses_postgres else None,
        )
        dispatcher.start()
        scheduler = Scheduler(
            store, queue, metrics, clock=time.time, tick_s=settings.scheduler_tick_ms / 1000
        )
        node = queue.node

        def heartbeat(now: float, restarts: int) -> None:
            store.execute("heartbeat", node=node, now=now, restarts=restarts)

        supervisor = SchedulerSupervisor(
            scheduler.tick,
            tick_s=scheduler.tick_s,
            clock=time.time,
            heartbeat=heartbeat,
            metrics=metrics,
        )
        supervisor.start()
        alerts = AlertEvaluator(metrics, clock=time.time)
        alerts.start()
        return cls(
            settings, keys, store, registry, pool, invoker, metrics, alerts, gateway, outbound,
            queue, dispatcher, schedules, supervisor,
            history=history, history_reader=HistoryReader(store), store_gauges=store_gauges,
            compiler=compiler,
        )  # fmt: skip

    async def close(self) -> None:
        await self.scheduler.close()
        await self.dispatcher.close()
        await self.alerts.aclose()
        await self.pool.close()
        if self.history is not None:
            await asyncio.to_thread(self.history.close)
        self.gateway.close()
        await self.outbound.aclose()
        self.compiler.close()
        self.store.close()
