"""The pool's failure paths, with real worker processes and a failing collaborator.

A host-call handler that raises, and a worker command that dies before it is ready.
"""

from __future__ import annotations

import asyncio
import itertools
import sys
import time

import pytest

from tests.runtime.test_pool import job_for
from tests.support.build import build_c
from wasmlet.runtime.compiler import ModuleCompiler
from wasmlet.runtime.outcome import HostCall, OutcomeKind
from wasmlet.runtime.pool import WorkerPool


@pytest.fixture(scope="module")
def compiler(tmp_path_factory: pytest.TempPathFactory) -> ModuleCompiler:
    return ModuleCompiler(tmp_path_factory.mktemp("compiled"))


def test_a_host_call_handler_that_raises_fails_the_call_not_the_worker(
    compiler: ModuleCompiler,
) -> None:
    failing = job_for(compiler, build_c("db_exec"), b"SELECT 1\n[]", timeout_ms=5_000)
    calls: list[HostCall] = []

    async def broken_handler(call: HostCall) -> bytes:
        calls.append(call)
        raise RuntimeError("a bug on the server's side")

    async def main() -> None:
        pids: list[int] = []
        pool = WorkerPool(
            1, on_event=lambda event, pid, _: pids.append(pid), host_calls=broken_handler
        )
        await pool.start()
        try:
            started = time.monotonic()
            outcome = await pool.run(failing, wait_until=started + 30)
            # The guest got an error to handle at once (it exits 1 on a failed query),
            # rather than waiting until the watchdog kills its worker at the timeout.
            assert outcome.kind is OutcomeKind.EXIT_ERROR, outcome
            assert outcome.host_error is not None
            assert outcome.host_error[0] == "db_unavailable"
            assert "RuntimeError" in outcome.host_error[1]
            assert outcome.last_host_call_failed
            assert len(calls) == 1
            # The worker is the same one, and still serves.
            assert pool.alive == 1 and len(pids) == 1
            again = await pool.run(failing, wait_until=time.monotonic() + 30)
            assert again.kind is OutcomeKind.EXIT_ERROR and len(pids) == 1
        finally:
            await pool.close()

    asyncio.run(main())


DIES_AT_START = (sys.executable, "-c", "import sys; sys.exit(3)")


def test_a_worker_that_dies_at_start_is_retried_with_backoff_not_in_a_loop(
    compiler: ModuleCompiler,
) -> None:
    job = job_for(compiler, build_c("hello"), b"")
    events: list[tuple[str, float]] = []

    async def main() -> None:
        pool = WorkerPool(
            1,
            on_event=lambda event, _pid, _reason: events.append((event, time.monotonic())),
            worker_argv=DIES_AT_START,
        )
        with pytest.raises(RuntimeError, match="failed to start"):
            await pool.start()
        try:
            await asyncio.sleep(3.0)  # an immediate respawn would start dozens in this time
            crashes = [at for event, at in events if event == "crashed"]
            assert 3 <= len(crashes) <= 8, crashes
            pauses = [later - earlier for earlier, later in itertools.pairwise(crashes)]
            assert pauses[-1] > pauses[0], pauses  # the pause grows
            # Unavailable, said at once: no waiting for a worker that will not come.
            assert pool.unavailable and pool.alive == 0
            asked = time.monotonic()
            outcome = await pool.run(job, wait_until=asked + 30)
            assert outcome.kind is OutcomeKind.RUNTIME_CRASH and not outcome.ran
            assert "no worker process can start: exited with code 3" in outcome.message
            assert time.monotonic() - asked < 10
        finally:
            await pool.close()
        count = len(events)
        await asyncio.sleep(0.5)
        assert len(events) == count  # closed: no more respawns

    asyncio.run(main())
