"""Done jobs past the retention are pruned in bounded batches, on a timer that survives a
failing store; dead letters and recent results stay."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from tests.support.flaky_store import FlakyStore
from wasmlet.store.sqlite import SqliteStore
from wasmlet.triggers.queue import DeadReason, JobQueue, NewJob
from wasmlet.triggers.retention import JobPruner, JobRetention

HANG_BOUND_S = 20.0


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def filled(tmp_path: Path, clock: Clock, done: int) -> tuple[FlakyStore, JobQueue]:
    """`done` jobs finished a day ago, one finished now, one dead letter from a day ago."""
    inner = SqliteStore(tmp_path / "platform.db")
    inner.migrate()
    store = FlakyStore(inner)
    queue = JobQueue(store, node="n", clock=clock, lease_s=30)
    queue.enqueue([NewJob(f"j{i}", "f", "database", b"{}") for i in range(done + 2)])
    claimed = queue.claim(done + 2)
    for job in claimed[:done]:
        queue.complete(job.id, version=1, result_status=200, result_body=b"")
    queue.bury(
        claimed[done].id, reason=DeadReason.NON_RETRIABLE, error_type="function_error",
        error="boom", version=1,
    )  # fmt: skip
    clock.now += 86_400
    queue.complete(claimed[done + 1].id, version=1, result_status=200, result_body=b"")
    return store, queue


def test_a_round_deletes_in_batches_until_a_short_one(tmp_path: Path) -> None:
    clock = Clock()
    store, queue = filled(tmp_path, clock, done=2_500)
    pruner = JobPruner(queue, JobRetention(age_s=3600, batch=1000), clock)
    assert pruner.prune() == 2_500
    assert store.calls["prune_done_jobs"] == 3  # 1000, 1000, 500
    assert queue.counts() == {"done": 1, "dead": 1}


def test_a_round_stops_at_its_cap_and_the_next_round_goes_on(tmp_path: Path) -> None:
    clock = Clock()
    _, queue = filled(tmp_path, clock, done=2_500)
    pruner = JobPruner(queue, JobRetention(age_s=3600, batch=1000, max_batches=2), clock)
    assert pruner.prune() == 2_000
    assert pruner.prune() == 500
    assert queue.counts() == {"done": 1, "dead": 1}


def test_the_timer_survives_a_failing_store(tmp_path: Path) -> None:
    clock = Clock()
    store, queue = filled(tmp_path, clock, done=30)
    store.fail("prune_done_jobs", 2)
    pruner = JobPruner(queue, JobRetention(age_s=3600, interval_s=0.01, batch=10), clock)

    async def scenario() -> None:
        pruner.start()
        try:
            deadline = time.monotonic() + HANG_BOUND_S
            while queue.counts().get("done", 0) > 1:
                assert time.monotonic() < deadline, "done jobs were never pruned"
                await asyncio.sleep(0.01)
        finally:
            await pruner.close()

    asyncio.run(scenario())
    assert store.failures["prune_done_jobs"] == 2
    assert queue.counts() == {"done": 1, "dead": 1}
