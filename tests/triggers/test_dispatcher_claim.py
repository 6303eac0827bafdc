"""The dispatcher when the store fails in the middle of a claim (real SQLite, a failing hook).

The claim is one statement (UPDATE ... RETURNING): it fails as a whole (nothing was
leased) or its answer is lost after it committed (the jobs are leased to this node, but
it never heard which): either way every job runs once and ends once, and the
dispatcher carries on.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from tests.support.flaky_store import FlakyStore
from tests.triggers.test_dispatcher import FakeInvoker, Ready, running, setup, until
from wasmlet.errors import DbUnavailable
from wasmlet.store.base import Row
from wasmlet.triggers.queue import Job, JobQueue, JobStatus, NewJob

JOBS = [NewJob(f"j{i}", "f", "database", b"{}") for i in range(3)]


def all_done(queue: JobQueue) -> bool:
    return all(queue.status_of(job.id) is JobStatus.DONE for job in JOBS)


def test_a_claim_statement_that_fails_leases_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store, queue = setup(tmp_path)
    invoker = FakeInvoker()
    failures = {"left": 2}
    real_fetch_all = FlakyStore.fetch_all

    def fetch_all(self: FlakyStore, query: str, /, **params: Any) -> list[Row]:
        if query == "claim_jobs" and failures["left"] > 0:
            failures["left"] -= 1
            raise DbUnavailable("Database unavailable: connection lost mid-claim (fake)")
        return real_fetch_all(self, query, **params)

    monkeypatch.setattr(FlakyStore, "fetch_all", fetch_all)

    async def scenario() -> None:
        async with running(tmp_path, store, queue, invoker, Ready()):
            queue.enqueue(JOBS)
            await until(lambda: all_done(queue), "every job to end")

    asyncio.run(scenario())
    assert failures["left"] == 0  # both failures happened
    assert sorted(invoker.calls) == [job.id for job in JOBS]  # each ran once
    for job in JOBS:
        row = queue.get(job.id)
        assert row is not None and row["attempts"] == 1, row  # the failed claims spent none


def test_a_claim_whose_answer_is_lost_after_commit_runs_each_job_once_after_the_lease(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store, queue = setup(tmp_path, lease_s=1.0)
    invoker = FakeInvoker()
    lost: list[str] = []
    real_claim = JobQueue.claim

    def claim(self: JobQueue, limit: int, skip: Any = (), caps: Any = None) -> list[Job]:
        jobs = real_claim(self, limit, skip, caps)
        if jobs and not lost:  # committed: leased to this node, then the answer is lost
            lost.extend(job.id for job in jobs)
            raise DbUnavailable("Database unavailable: connection lost after commit (fake)")
        return jobs

    monkeypatch.setattr(JobQueue, "claim", claim)

    async def scenario() -> None:
        async with running(tmp_path, store, queue, invoker, Ready()):
            queue.enqueue(JOBS)
            await until(lambda: all_done(queue), "every job to end")

    asyncio.run(scenario())
    assert sorted(lost) == [job.id for job in JOBS]
    assert sorted(invoker.calls) == [job.id for job in JOBS]  # once each, after the lease
    assert store.calls["requeue_expired"] >= 1
