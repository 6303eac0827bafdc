"""The durable job queue on SQLite and PostgreSQL, driven by a fake clock."""

from __future__ import annotations

import pytest

from wasmlet.store.base import Store
from wasmlet.triggers.queue import JobQueue, JobStatus, NewJob


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def queue_of(store: Store, node: str, clock: Clock) -> JobQueue:
    store.migrate()
    return JobQueue(store, node=node, clock=clock, lease_s=10)


def jobs(n: int) -> list[NewJob]:
    return [NewJob(f"e{i}", "f", "database", b"{}") for i in range(n)]


def test_enqueue_is_idempotent_by_event_id(store: Store, clock: Clock) -> None:
    queue = queue_of(store, "a", clock)
    queue.enqueue(jobs(3))
    queue.enqueue(jobs(3))
    assert queue.counts() == {"queued": 3}


def test_claim_complete_fail(store: Store, clock: Clock) -> None:
    queue = queue_of(store, "a", clock)
    queue.enqueue(jobs(3))
    claimed = queue.claim(2)
    assert len(claimed) == 2 and all(job.attempts == 1 for job in claimed)
    queue.complete(claimed[0].id)
    queue.fail(claimed[1].id, "timeout", "Function timeout after 10s")
    assert queue.status_of(claimed[0].id) is JobStatus.DONE
    assert queue.status_of(claimed[1].id) is JobStatus.FAILED
    assert queue.counts() == {"done": 1, "failed": 1, "queued": 1}


def test_future_jobs_wait_for_their_time(store: Store, clock: Clock) -> None:
    queue = queue_of(store, "a", clock)
    queue.enqueue([NewJob("later", "f", "schedule", b"{}", run_at=clock.now + 60)])
    assert queue.claim(5) == []
    clock.now += 61
    assert [job.id for job in queue.claim(5)] == ["later"]


def test_released_job_comes_back_without_counting_the_attempt(store: Store, clock: Clock) -> None:
    queue = queue_of(store, "a", clock)
    queue.enqueue(jobs(1))
    (job,) = queue.claim(1)
    queue.release(job.id, delay_s=1)
    assert queue.claim(1) == []
    clock.now += 2
    (again,) = queue.claim(1)
    assert again.attempts == 1


def test_expired_leases_go_back_to_the_queue(store: Store, clock: Clock) -> None:
    dead = queue_of(store, "dead-node", clock)
    alive = JobQueue(store, node="alive", clock=clock, lease_s=10)
    dead.enqueue(jobs(2))
    assert len(dead.claim(2)) == 2
    clock.now += 5
    assert alive.requeue_expired() == 0
    clock.now += 6
    assert alive.requeue_expired() == 2
    reclaimed = alive.claim(5)
    assert sorted(job.id for job in reclaimed) == ["e0", "e1"]
    assert all(job.attempts == 2 for job in reclaimed)
    dead.complete("e0")  # a late answer from the dead node changes nothing
    assert alive.status_of("e0") is JobStatus.RUNNING


def test_extended_leases_do_not_expire(store: Store, clock: Clock) -> None:
    queue = queue_of(store, "a", clock)
    queue.enqueue(jobs(1))
    queue.claim(1)
    for _ in range(5):
        clock.now += 8
        queue.extend_leases()
        assert queue.requeue_expired() == 0
