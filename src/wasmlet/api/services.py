"""The objects a running server is made of, built and closed by the app's lifespan."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import wasmlet
from wasmlet.api.jwt_verifier import JwtVerifier
from wasmlet.api.keys import ApiKeys, load_or_create_keys
from wasmlet.api.users import user_verifier
from wasmlet.appdb.factory import open_app_database
from wasmlet.invocation.database_calls import DatabaseGateway
from wasmlet.invocation.invoker import Invoker, RuntimeDefaults
from wasmlet.js.package import JavaScriptPackager
from wasmlet.observability.alert_rules import RULES, AlertThresholds, platform_rules
from wasmlet.observability.alerts import WINDOW_S, AlertEvaluator
from wasmlet.observability.cluster_view import SchedulerBeats, StoreClusterView
from wasmlet.observability.history import HistoryWriter, open_history
from wasmlet.observability.history_views import HistoryReader
from wasmlet.observability.nodes import NodeHeartbeat, NodeIdentity, NodeLoad
from wasmlet.observability.store_gauges import StoreGauges
from wasmlet.outbound.gateway import OutboundGateway, OutboundLimits
from wasmlet.registry.changes import RegistryListener
from wasmlet.registry.modules import LocalModules
from wasmlet.registry.registry import OperatorLimits, Registry
from wasmlet.reliability.breaker import BreakerPolicy, BreakerState, CircuitBreaker
from wasmlet.reliability.breakers import Breakers, FunctionBreakers
from wasmlet.reliability.concurrency import ConcurrencyLimiter
from wasmlet.reliability.shared_breakers import SharedBreakers
from wasmlet.reliability.slots import FunctionSlots, LocalSlots
from wasmlet.runtime.compiler import CompileLimits, ModuleCompiler
from wasmlet.runtime.outcome import HostCall
from wasmlet.runtime.pool import WorkerPool
from wasmlet.secrets.box import SecretBox, load_key
from wasmlet.secrets.service import Secrets
from wasmlet.settings import Settings
from wasmlet.store import Store, open_store
from wasmlet.telemetry.logs import Redactor, get_logger
from wasmlet.telemetry.metrics import Metrics
from wasmlet.triggers.database import TriggerInstaller
from wasmlet.triggers.dispatcher import Dispatcher
from wasmlet.triggers.queue import JobQueue
from wasmlet.triggers.readiness import NodeReadiness
from wasmlet.triggers.retention import JobPruner, JobRetention
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
    pruner: JobPruner
    history: HistoryWriter | None
    history_reader: HistoryReader
    store_gauges: StoreGauges
    compiler: ModuleCompiler
    nodes: NodeHeartbeat
    secrets: Secrets
    users: JwtVerifier
    registry_listener: RegistryListener | None = None
    exits: contextlib.AsyncExitStack = field(default_factory=contextlib.AsyncExitStack)
    """Every started part's close, in start order: `close` runs them in reverse."""
    _javascript: JavaScriptPackager | None = field(default=None, repr=False)
    _javascript_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def javascript(self) -> JavaScriptPackager:
        """The JavaScript packager: built on the first JavaScript deploy, closed at stop."""
        with self._javascript_lock:
            if self._javascript is None:
                packager = JavaScriptPackager(scratch_dir=self.settings.data_dir / "js")
                self.exits.callback(packager.close)
                self._javascript = packager
            return self._javascript

    @classmethod
    async def start(cls, settings: Settings, redactor: Redactor | None = None) -> Services:
        """Start every part; a step that fails closes what started before it, in reverse."""
        exits = contextlib.AsyncExitStack()
        try:
            return await cls._start(settings, redactor, exits)
        except BaseException:
            await exits.aclose()
            raise

    @classmethod
    async def _start(
        cls, settings: Settings, redactor: Redactor | None, exits: contextlib.AsyncExitStack
    ) -> Services:
        log = get_logger("startup")
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        keys = load_or_create_keys(settings.keys_path, settings.service_key, settings.anon_key)
        redactor = redactor or Redactor()
        redactor.add(keys.service, keys.anon, settings.jwt_secret)
        box = SecretBox(load_key(settings.secrets_key, settings.secrets_key_path))
        # Start-up's database work runs in threads too: nothing blocks the loop.
        store = await asyncio.to_thread(
            open_store,
            settings.database_url,
            settings.platform_db_path,
            schema=settings.pg_schema,
            pool_size=settings.store_pool_size,
        )
        exits.callback(store.close)
        applied = await asyncio.to_thread(store.migrate)
        secrets = Secrets(store, box, clock=time.monotonic, on_values=redactor.add)
        app_db = await asyncio.to_thread(open_app_database, settings)
        exits.callback(app_db.close)
        compiler = ModuleCompiler(
            Path(settings.module_cache_dir),
            CompileLimits(
                timeout_s=settings.compile_timeout_s,
                memory_mb=settings.compile_memory_mb,
                concurrency=settings.compile_concurrency,
                queue=settings.compile_queue,
            ),
            keep_spare=True,
            restore=settings.compile_restore_snapshots,
        )
        exits.callback(compiler.close)
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
            max_stale_s=settings.registry_max_stale_s,
            changes_channel=_changes_channel(settings),
            versions_kept=settings.versions_kept,
        )
        modules = LocalModules(store, compiler, clock=time.monotonic)
        recompiled = await asyncio.to_thread(
            registry.ensure_compiled,
            on_failure=lambda key, exc: log.error(
                "stored module does not compile", module_key=key, error=exc.message
            ),
        )
        metrics = Metrics()
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
        exits.callback(gateway.close)

        outbound = OutboundGateway(
            OutboundLimits(
                max_in_flight=settings.http_max_in_flight,
                max_in_flight_per_function=settings.http_max_in_flight_per_function,
                max_request_bytes=settings.http_max_request_bytes,
                max_response_bytes=settings.http_max_response_bytes,
            ),
            metrics,
        )
        exits.push_async_callback(outbound.aclose)
        history = open_history(settings, on_drop=metrics.history_dropped.inc)
        if history is not None:
            exits.push_async_callback(asyncio.to_thread, history.close)
        pool = await _start_pool(settings, metrics, gateway, outbound, exits)
        store_gauges = StoreGauges(store, clock=time.time)
        metrics.registry.register(store_gauges)
        node = uuid.uuid4().hex
        breakers, slots = _cluster_parts(settings, store, node, metrics, exits)
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
            breakers,
            history=history,
            modules=modules,
            slots=slots,
            secrets=secrets,
            scrub=redactor.scrub,
        )
        log.info(
            "server ready",
            database=store.dialect,
            migrations_applied=applied,
            modules_recompiled=recompiled,
            workers=settings.workers,
        )
        queue = JobQueue(store, node=node, clock=time.time, lease_s=settings.job_lease_s)
        if store.dialect == "sqlite":
            await asyncio.to_thread(
                queue.requeue_all_running
            )  # one node per SQLite file: nothing else runs them
        dispatcher = Dispatcher(
            queue,
            app_db,
            registry,
            invoker,
            metrics,
            # A module missing here is built on the first call; one that failed to build
            # a moment ago leaves its jobs to the other nodes.
            readiness=NodeReadiness(
                invoker.breakers,
                module_ready=lambda record: not modules.refuses(record.module_key),
                clock=time.monotonic,
            ),
            concurrency=settings.dispatch_concurrency or settings.workers * 2,
            poll_s=settings.dispatch_poll_ms / 1000,
            clock=time.time,
            listen_url=settings.database_url if settings.uses_postgres else None,
            channel=f"wasmlet_outbox_{settings.pg_schema}" if settings.uses_postgres else None,
        )
        dispatcher.start()
        exits.push_async_callback(dispatcher.close)
        pruner = JobPruner(
            queue,
            JobRetention(
                age_s=settings.job_retention_s,
                interval_s=settings.job_prune_interval_s,
                batch=settings.job_prune_batch,
            ),
            clock=time.time,
        )
        pruner.start()
        exits.push_async_callback(pruner.close)
        supervisor = _start_scheduler(settings, store, queue, metrics, node, exits)
        alerts = _alert_evaluator(settings, store, metrics, node, exits)
        listener = _registry_listener(settings, registry, modules, exits)
        nodes = await _node_heartbeat(settings, store, node, pool, invoker, exits)
        return cls(
            settings, keys, store, registry, pool, invoker, metrics, alerts, gateway, outbound,
            queue, dispatcher, schedules, supervisor, pruner,
            history=history, history_reader=HistoryReader(store), store_gauges=store_gauges,
            compiler=compiler, registry_listener=listener,
            nodes=nodes,
            secrets=secrets,
            users=_start_users(settings, exits),
            exits=exits,
        )  # fmt: skip

    async def close(self) -> None:
        """Close every part, the last started first (all of them, even when one fails)."""
        await self.exits.aclose()


def _start_users(settings: Settings, exits: contextlib.AsyncExitStack) -> JwtVerifier:
    users = user_verifier(settings)
    exits.push_async_callback(users.aclose)
    return users


async def _start_pool(
    settings: Settings,
    metrics: Metrics,
    gateway: DatabaseGateway,
    outbound: OutboundGateway,
    exits: contextlib.AsyncExitStack,
) -> WorkerPool:
    worker_log = get_logger("worker")

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
    exits.push_async_callback(pool.close)  # a start that fails half-way stops its workers
    await pool.start()
    return pool


def _start_scheduler(
    settings: Settings,
    store: Store,
    queue: JobQueue,
    metrics: Metrics,
    node: str,
    exits: contextlib.AsyncExitStack,
) -> SchedulerSupervisor:
    scheduler = Scheduler(
        store, queue, metrics, clock=time.time, tick_s=settings.scheduler_tick_ms / 1000
    )

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

    async def stop_scheduler() -> None:
        await supervisor.close()
        with contextlib.suppress(Exception):  # else the row goes silent, then is forgotten
            await asyncio.to_thread(store.execute, "forget_heartbeat", node=node)

    exits.push_async_callback(stop_scheduler)
    return supervisor


def _registry_listener(
    settings: Settings,
    registry: Registry,
    modules: LocalModules,
    exits: contextlib.AsyncExitStack,
) -> RegistryListener | None:
    """Hears other nodes' deploys (PostgreSQL only: one node per SQLite file)."""
    if not settings.uses_postgres or settings.database_url is None:
        return None
    listener = RegistryListener(
        settings.database_url, _changes_channel(settings), registry, modules
    )
    listener.start()
    exits.push_async_callback(listener.close)
    return listener


def _changes_channel(settings: Settings) -> str:
    return f"wasmlet_registry_{settings.pg_schema}"


def _cluster_parts(
    settings: Settings, store: Store, node: str, metrics: Metrics, exits: contextlib.AsyncExitStack
) -> tuple[Breakers, FunctionSlots]:
    """Breakers and `max_concurrency` slots: shared through PostgreSQL by every node,
    or this process's own on SQLite (one node)."""
    defaults = BreakerPolicy(
        failure_rate=settings.breaker_failure_rate,
        window_s=settings.breaker_window_s,
        min_calls=settings.breaker_min_calls,
        cooldown_s=settings.breaker_cooldown_s,
    )
    if not settings.uses_postgres or settings.database_url is None:
        return FunctionBreakers(defaults, clock=time.monotonic, metrics=metrics), LocalSlots()
    from wasmlet.store.advisory_slots import AdvisorySlots

    shared = SharedBreakers(
        store, node, defaults, clock=time.time, metrics=metrics, sync_s=settings.breaker_sync_s
    )
    shared.start()
    exits.push_async_callback(shared.aclose)
    slots = AdvisorySlots(settings.database_url, schema=settings.pg_schema)
    exits.push_async_callback(slots.aclose)
    return shared, slots


def _advertised(settings: Settings) -> str:
    if settings.node_address:
        return settings.node_address
    host = settings.host
    if host in ("0.0.0.0", "::", ""):
        host = socket.gethostname()
    return f"{host}:{settings.port}"


async def _node_heartbeat(
    settings: Settings,
    store: Store,
    node: str,
    pool: WorkerPool,
    invoker: Invoker,
    exits: contextlib.AsyncExitStack,
) -> NodeHeartbeat:
    heartbeat = NodeHeartbeat(
        store,
        NodeIdentity(node, _advertised(settings), wasmlet.__version__, time.time()),
        lambda: NodeLoad(pool.size, pool.alive, invoker.in_flight),
        clock=time.time,
        heartbeat_s=settings.node_heartbeat_s,
        forget_s=settings.node_forget_s,
    )
    await heartbeat.start()
    exits.push_async_callback(heartbeat.aclose)
    return heartbeat


def _alert_evaluator(
    settings: Settings, store: Store, metrics: Metrics, node: str, exits: contextlib.AsyncExitStack
) -> AlertEvaluator:
    thresholds = AlertThresholds(
        scheduler_stale_s=settings.alert_scheduler_stale_s,
        queue_age_s=settings.alert_queue_age_s,
        node_silent_s=settings.alert_node_silent_s,
    )
    alerts = AlertEvaluator(
        metrics,
        clock=time.time,
        rules=RULES + platform_rules(thresholds),
        cluster=StoreClusterView(store, SchedulerBeats(store), window_s=WINDOW_S),
        node=node,
        interval_s=settings.alert_interval_s,
    )
    alerts.start()
    exits.push_async_callback(alerts.aclose)
    return alerts
