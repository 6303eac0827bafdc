"""The invoker built alone: a real pool of real workers, and one failing collaborator.

A host-call handler that raises ends the invocation as the documented 503
`db_unavailable` (the guest saw the error and gave up), and the worker serves on. A
pool whose workers cannot start ends it as 500 `runtime_crash` at once, not after the
function's timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from collections.abc import Awaitable, Callable

import pytest

from tests.support.build import build_c
from wasmlet.errors import DbUnavailable, RuntimeCrash
from wasmlet.invocation.invoker import InvocationRequest, Invoker, RuntimeDefaults
from wasmlet.registry.models import FunctionConfig, FunctionRecord
from wasmlet.reliability.breaker import BreakerPolicy
from wasmlet.reliability.breakers import FunctionBreakers
from wasmlet.reliability.concurrency import ConcurrencyLimiter
from wasmlet.runtime.compiler import ModuleCompiler
from wasmlet.runtime.outcome import HostCall
from wasmlet.runtime.pool import WorkerPool
from wasmlet.telemetry.metrics import Metrics

DEFAULTS = RuntimeDefaults(
    timeout_ms=5_000, memory_mb=64, max_response_bytes=1 << 20, max_log_bytes=1 << 16,
    retry_after_s=1,
)  # fmt: skip


@pytest.fixture(scope="module")
def db_exec(tmp_path_factory: pytest.TempPathFactory) -> InvocationRequest:
    compiled = ModuleCompiler(tmp_path_factory.mktemp("compiled")).compile(build_c("db_exec"))
    record = FunctionRecord(
        name="f", version=1, enabled=True, config=FunctionConfig(), triggers=[],
        module_key=compiled.key, created_at=0.0, updated_at=0.0,
    )  # fmt: skip
    return InvocationRequest(function=record, module_path=str(compiled.path), payload=b"SELECT 1")


def invoker_over(pool: WorkerPool, metrics: Metrics) -> Invoker:
    breakers = FunctionBreakers(BreakerPolicy(), clock=time.monotonic, metrics=metrics)
    return Invoker(pool, ConcurrencyLimiter(10), metrics, DEFAULTS, breakers)


async def raising(call: HostCall) -> bytes:
    raise ConnectionResetError("the database driver blew up")


def run_with(pool: WorkerPool, body: Callable[[Invoker], Awaitable[None]]) -> None:
    async def main() -> None:
        with contextlib.suppress(RuntimeError):  # workers that cannot start: cope anyway
            await pool.start()
        try:
            await body(invoker_over(pool, Metrics()))
        finally:
            await pool.close()

    asyncio.run(main())


def test_a_raising_host_call_handler_is_503_db_unavailable_and_the_worker_serves_on(
    db_exec: InvocationRequest,
) -> None:
    pool = WorkerPool(1, host_calls=raising)

    async def body(invoker: Invoker) -> None:
        for _ in range(2):
            started = time.monotonic()
            with pytest.raises(DbUnavailable) as raised:
                await invoker.invoke(db_exec)
            assert raised.value.status == 503 and raised.value.retry_after == 1
            assert "ConnectionResetError" in raised.value.message
            assert "blew up" not in raised.value.message  # the server's detail stays in its log
            assert time.monotonic() - started < DEFAULTS.timeout_ms / 1000  # not the watchdog
            assert pool.alive == 1

    run_with(pool, body)


def test_a_pool_whose_workers_cannot_start_is_a_prompt_runtime_crash(
    db_exec: InvocationRequest,
) -> None:
    pool = WorkerPool(1, worker_argv=(sys.executable, "-c", "raise SystemExit(3)"))

    async def body(invoker: Invoker) -> None:
        started = time.monotonic()
        with pytest.raises(RuntimeCrash, match="no worker process can start"):
            await invoker.invoke(db_exec)
        assert time.monotonic() - started < DEFAULTS.timeout_ms / 1000
        assert invoker.in_flight == 0  # its permit was given back

    run_with(pool, body)
