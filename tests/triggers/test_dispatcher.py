"""The dispatcher against a store that fails on demand: every job records an end once,
leases are renewed only for the jobs this node holds, and a function this node cannot
run is left to other nodes."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Collection
from contextlib import asynccontextmanager
from pathlib import Path

from tests.support.flaky_store import FlakyStore
from wasmlet.appdb.sqlite import SqliteAppDatabase
from wasmlet.errors import CircuitOpen, DbUnavailable
from wasmlet.invocation.invoker import InvocationRequest, InvocationResult
from wasmlet.registry.models import FunctionConfig, FunctionRecord
from wasmlet.runtime.outcome import Outcome, OutcomeKind
from wasmlet.store.sqlite import SqliteStore
from wasmlet.telemetry.metrics import Metrics
from wasmlet.triggers.dispatcher import Dispatcher
from wasmlet.triggers.queue import JobQueue, JobStatus, NewJob

HANG_BOUND_S = 20.0  # against a hang only; each wait below needs a fraction of a second


def record_of(name: str, max_concurrency: int | None = None) -> FunctionRecord:
    return FunctionRecord(
        name=name, version=1, enabled=True, triggers=[],
        config=FunctionConfig(max_concurrency=max_concurrency),
        module_key="k", created_at=0.0, updated_at=0.0,
    )  # fmt: skip


class Functions:
    def __init__(self) -> None:
        self.failures = 0  # the next lookups that fail, as a registry read in an outage does
        self.limits: dict[str, int] = {}  # max_concurrency per function

    def find(self, name: str) -> FunctionRecord | None:
        if self.failures > 0:
            self.failures -= 1
            raise DbUnavailable("Database unavailable: connection refused (fake)")
        return record_of(name, self.limits.get(name))

    async def lookup(self, name: str) -> FunctionRecord | None:
        return await asyncio.to_thread(self.find, name)

    def module_path(self, record: FunctionRecord) -> str:
        return "/nowhere"


class FakeInvoker:
    """Runs nothing: counts calls, holds them while `hold` is clear, refuses `refuse`."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.hold = asyncio.Event()
        self.hold.set()
        self.refuse: set[str] = set()
        self.refused: set[str] = set()  # a breaker that refused once reports not ready

    async def invoke(self, request: InvocationRequest) -> InvocationResult:
        if request.function.name in self.refuse:
            self.refused.add(request.function.name)
            raise CircuitOpen("Circuit open", function=request.function.name, retry_after=60)
        self.calls.append(request.request_id)
        await self.hold.wait()
        outcome = Outcome(OutcomeKind.OK, stdout=b"ok")
        return InvocationResult(200, [], b"ok", 1.0, outcome)


class Ready:
    def __init__(self, blocked: set[str] | None = None) -> None:
        self.blocked: set[str] = set() if blocked is None else blocked

    def not_ready(self) -> Collection[str]:
        return set(self.blocked)

    def check(self, function: FunctionRecord) -> bool:
        return function.name not in self.blocked


@asynccontextmanager
async def running(
    tmp_path: Path,
    store: FlakyStore,
    queue: JobQueue,
    invoker: FakeInvoker,
    ready: Ready,
    functions: Functions | None = None,
    concurrency: int = 4,
) -> AsyncIterator[Dispatcher]:
    app_db = SqliteAppDatabase(tmp_path / "app.db")
    dispatcher = Dispatcher(
        queue, app_db, functions or Functions(), invoker, Metrics(),
        readiness=ready, concurrency=concurrency, poll_s=0.01, clock=time.time,
    )  # fmt: skip
    dispatcher.start()
    try:
        yield dispatcher
    finally:
        store.down = False
        invoker.hold.set()
        await dispatcher.close()
        app_db.close()


async def until(check: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + HANG_BOUND_S
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.01)


def setup(tmp_path: Path, lease_s: float = 30.0) -> tuple[FlakyStore, JobQueue]:
    inner = SqliteStore(tmp_path / "platform.db")
    inner.migrate()
    store = FlakyStore(inner)
    return store, JobQueue(store, node="me", clock=time.time, lease_s=lease_s)


def test_a_completion_write_that_fails_is_retried_until_it_lands_and_ends_the_job_once(
    tmp_path: Path,
) -> None:
    store, queue = setup(tmp_path)
    invoker = FakeInvoker()

    async def scenario() -> None:
        async with running(tmp_path, store, queue, invoker, Ready()):
            store.fail("complete_job", 3)
            queue.enqueue([NewJob("j1", "f", "database", b"{}")])
            await until(lambda: queue.status_of("j1") is JobStatus.DONE, "the job to end")

    asyncio.run(scenario())
    assert store.failures["complete_job"] == 3
    assert store.calls["complete_job"] == 4
    assert invoker.calls == ["j1"]  # ran once
    row = queue.get("j1")
    assert row is not None and row["attempts"] == 1 and row["result_status"] == 200


def test_a_job_finishing_during_an_outage_ends_done_once_the_database_is_back(
    tmp_path: Path,
) -> None:
    """Every query fails while the job runs and ends; none is left `running`."""
    store, queue = setup(tmp_path)
    invoker = FakeInvoker()
    invoker.hold.clear()

    async def scenario() -> None:
        async with running(tmp_path, store, queue, invoker, Ready()):
            queue.enqueue([NewJob("j1", "f", "database", b"{}")])
            await until(lambda: invoker.calls == ["j1"], "the job to start")
            store.down = True
            invoker.hold.set()
            await until(lambda: store.failures["complete_job"] >= 2, "a failed completion")
            store.down = False
            await until(lambda: queue.status_of("j1") is JobStatus.DONE, "the job to end")

    asyncio.run(scenario())
    assert invoker.calls == ["j1"]


def test_a_job_whose_function_cannot_be_read_goes_back_without_spending_an_attempt(
    tmp_path: Path,
) -> None:
    """The registry read fails (the database blinked after the claim): the job is handed
    back, not left `running`, and runs once the read works."""
    store, queue = setup(tmp_path)
    invoker = FakeInvoker()
    functions = Functions()
    functions.failures = 1

    async def scenario() -> None:
        async with running(tmp_path, store, queue, invoker, Ready(), functions):
            queue.enqueue([NewJob("j1", "f", "database", b"{}")])
            await until(lambda: queue.status_of("j1") is JobStatus.DONE, "the job to end")

    asyncio.run(scenario())
    assert store.calls["release_job"] == 1
    assert invoker.calls == ["j1"]
    row = queue.get("j1")
    assert row is not None and row["attempts"] == 1


def test_leases_are_renewed_only_for_jobs_this_node_still_holds(tmp_path: Path) -> None:
    """`lost` was claimed in this node's name but the node never saw it (the claim's
    answer was lost): its lease runs out and the job goes back to the queue, while the
    job the node is running keeps its lease."""
    store, queue = setup(tmp_path, lease_s=0.5)
    invoker = FakeInvoker()
    invoker.hold.clear()
    ready = Ready()
    ready.blocked.add("elsewhere")  # this node never claims `lost` itself again

    async def scenario() -> None:
        queue.enqueue([NewJob("lost", "elsewhere", "database", b"{}")])
        assert [job.id for job in queue.claim(1)] == ["lost"]
        async with running(tmp_path, store, queue, invoker, ready):
            queue.enqueue([NewJob("held", "f", "database", b"{}")])
            await until(lambda: invoker.calls == ["held"], "the held job to start")
            await until(lambda: queue.status_of("lost") is JobStatus.QUEUED, "lost requeued")
            await asyncio.sleep(1.0)  # twice the lease: renewals keep the held one
            assert queue.status_of("held") is JobStatus.RUNNING
            assert queue.requeue_expired() == 0
            invoker.hold.set()
            await until(lambda: queue.status_of("held") is JobStatus.DONE, "the held job")

    asyncio.run(scenario())
    assert invoker.calls == ["held"]


def test_a_function_this_node_cannot_run_is_neither_claimed_nor_parked(tmp_path: Path) -> None:
    """Its jobs stay queued for other nodes; one claimed before the breaker opened goes
    back at once (due now), not after the breaker's cool-down."""
    store, queue = setup(tmp_path)
    invoker = FakeInvoker()
    invoker.refuse.add("broken")  # its breaker opens between the claim and the run
    ready = Ready(invoker.refused)

    async def scenario() -> None:
        async with running(tmp_path, store, queue, invoker, ready):
            queue.enqueue([NewJob("b1", "broken", "database", b"{}")])
            await until(lambda: store.calls["release_job"] == 1, "the refused job handed back")
            enqueued = time.time()
            queue.enqueue(
                [NewJob("b2", "broken", "database", b"{}"), NewJob("ok", "f", "database", b"{}")]
            )
            await until(lambda: queue.status_of("ok") is JobStatus.DONE, "the healthy job")
            await asyncio.sleep(0.2)
            for job_id in ("b1", "b2"):
                row = queue.get(job_id)
                assert row is not None and row["status"] == "queued"
                assert row["attempts"] == 0
                assert row["run_at"] <= enqueued + 1  # due now, for any node that can run it
            assert store.calls["release_job"] == 1  # b2 was never claimed

    asyncio.run(scenario())
    assert invoker.calls == ["ok"]


def test_a_failing_write_in_a_batch_of_ends_leaves_each_job_to_end_exactly_once(
    tmp_path: Path,
) -> None:
    """Eight runs return together, so their ends go in one batch; its third completion
    fails: the batch lands none, and each end is then written on its own, once."""
    store, queue = setup(tmp_path)
    invoker = FakeInvoker()
    invoker.hold.clear()
    ids = [f"j{i}" for i in range(8)]

    async def scenario() -> None:
        async with running(tmp_path, store, queue, invoker, Ready(), concurrency=8) as dispatcher:
            queue.enqueue([NewJob(i, "f", "database", b"{}") for i in ids])
            await until(lambda: len(invoker.calls) == 8, "all eight to start")
            store.fail("complete_job", 1, after=2)
            invoker.hold.set()
            await until(
                lambda: all(queue.status_of(i) is JobStatus.DONE for i in ids), "every job to end"
            )
            assert dispatcher.largest_end_batch == 8

    asyncio.run(scenario())
    assert store.failures["complete_job"] == 1
    assert store.calls["complete_job"] > len(ids)  # the batch's writes ran again, alone
    assert sorted(invoker.calls) == ids  # each ran once
    for job_id in ids:
        row = queue.get(job_id)
        assert row is not None and row["attempts"] == 1 and row["status"] == "done"


def test_close_in_the_same_moment_as_a_wake_up_stops_the_dispatcher(tmp_path: Path) -> None:
    """A wake-up and the cancel of close() land together (a run that returns as the node
    shuts down): the loop must stop. Python 3.11's `asyncio.wait_for` returned the
    wake-up and swallowed the cancel, and close() waited forever."""
    _store, queue = setup(tmp_path)
    app_db = SqliteAppDatabase(tmp_path / "app.db")
    dispatcher = Dispatcher(
        queue, app_db, Functions(), FakeInvoker(), Metrics(),
        readiness=Ready(), concurrency=4, poll_s=0.01, clock=time.time,
    )  # fmt: skip

    async def scenario() -> None:
        dispatcher.start()
        this = asyncio.current_task()
        assert this is not None
        await asyncio.sleep(0.3)  # the loop is idle, waiting for a wake-up
        # Past the bound, cancel the test itself (close() passes it on to the loop).
        watchdog = asyncio.get_running_loop().call_later(HANG_BOUND_S, this.cancel)
        started = time.monotonic()
        dispatcher.wake()
        await dispatcher.close()  # its cancel goes out before the wake-up is seen
        watchdog.cancel()
        waited = time.monotonic() - started
        assert waited < HANG_BOUND_S, "close() waited for the dispatcher loop until cancelled"

    try:
        asyncio.run(scenario())
    finally:
        app_db.close()


def test_no_more_jobs_of_a_limited_function_are_claimed_than_it_has_slots_free(
    tmp_path: Path,
) -> None:
    """max_concurrency 2 on a dispatcher with room for 6: two of its jobs are claimed at a
    time (a claimed job finding no slot would be handed back, again and again), and the
    room left goes to the other functions."""
    store, queue = setup(tmp_path)
    invoker = FakeInvoker()
    functions = Functions()
    functions.limits["limited"] = 2

    async def scenario() -> None:
        async with running(tmp_path, store, queue, invoker, Ready(), functions, 6):
            queue.enqueue([NewJob("first", "limited", "database", b"{}")])
            await until(lambda: queue.status_of("first") is JobStatus.DONE, "the first run")
            invoker.hold.clear()  # runs now last until released
            queue.enqueue([NewJob(f"l{i}", "limited", "database", b"{}") for i in range(8)])
            queue.enqueue([NewJob(f"o{i}", "other", "database", b"{}") for i in range(8)])
            await until(lambda: len(invoker.calls) == 7, "the slots taken")
            await asyncio.sleep(0.3)  # a claim past the limit would show by now
            assert queue.counts()["running"] == 6
            assert sorted(c for c in invoker.calls if c.startswith("l")) == ["l0", "l1"]
            assert len(invoker.calls) == 7

    asyncio.run(scenario())
