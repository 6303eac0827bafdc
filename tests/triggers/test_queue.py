"""The durable job queue on SQLite and PostgreSQL, driven by a fake clock."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from wasmlet.store.base import Store
from wasmlet.triggers.queue import (
    DeadLetterFilter,
    DeadReason,
    Job,
    JobQueue,
    JobStatus,
    NewJob,
)


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
    queue.complete(claimed[0].id, version=1, result_status=200, result_body=b"ok")
    queue.bury(
        claimed[1].id, reason=DeadReason.NON_RETRIABLE, error_type="function_error",
        error="exited with code 1", version=1,
    )  # fmt: skip
    assert queue.status_of(claimed[0].id) is JobStatus.DONE
    assert queue.status_of(claimed[1].id) is JobStatus.DEAD
    assert queue.counts() == {"done": 1, "dead": 1, "queued": 1}


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
    dead.complete("e0", version=1, result_status=200, result_body=b"")  # too late: ignored
    assert alive.status_of("e0") is JobStatus.RUNNING


def test_extended_leases_do_not_expire(store: Store, clock: Clock) -> None:
    queue = queue_of(store, "a", clock)
    queue.enqueue(jobs(1))
    queue.claim(1)
    for _ in range(5):
        clock.now += 8
        queue.extend_leases(["e0"])
        assert queue.requeue_expired() == 0


def test_only_the_leases_of_held_jobs_are_renewed(store: Store, clock: Clock) -> None:
    """A job the node lost track of (its end never recorded) is left to expire."""
    queue = queue_of(store, "a", clock)
    queue.enqueue(jobs(2))
    queue.claim(2)
    for _ in range(2):
        clock.now += 8
        queue.extend_leases(["e0"])
    assert queue.requeue_expired() == 1
    assert queue.status_of("e0") is JobStatus.RUNNING
    assert queue.status_of("e1") is JobStatus.QUEUED


def test_a_late_end_lands_while_no_other_node_claimed_the_job(store: Store, clock: Clock) -> None:
    """The lease ran out in an outage and the job was requeued: the end written when the
    database is back still counts, as long as no node has claimed the job since."""
    a = queue_of(store, "a", clock)
    b = JobQueue(store, node="b", clock=clock, lease_s=10)
    a.enqueue(jobs(2))
    first, second = a.claim(2)
    clock.now += 11
    assert b.requeue_expired() == 2
    assert a.complete(first.id, version=1, result_status=200, result_body=b"", attempt=1)
    assert a.status_of(first.id) is JobStatus.DONE
    (again,) = b.claim(5)
    assert again.id == second.id and again.attempts == 2
    assert not a.complete(second.id, version=1, result_status=200, result_body=b"", attempt=1)
    assert b.complete(second.id, version=1, result_status=200, result_body=b"", attempt=2)


def test_claims_skip_functions_this_node_cannot_run(store: Store, clock: Clock) -> None:
    queue = queue_of(store, "a", clock)
    queue.enqueue(
        [NewJob("x1", "broken", "database", b"{}"), NewJob("y1", "fine", "database", b"{}")]
    )
    assert queue.next_due(skip={"broken", "fine"}) is None
    assert queue.next_due(skip={"broken"}) == clock.now
    assert [job.id for job in queue.claim(5, skip={"broken"})] == ["y1"]
    assert [job.id for job in queue.claim(5)] == ["x1"]


def test_done_jobs_past_the_retention_are_pruned_in_batches(store: Store, clock: Clock) -> None:
    queue = queue_of(store, "a", clock)
    queue.enqueue(jobs(5))
    claimed = queue.claim(5)
    for job in claimed[:4]:
        queue.complete(job.id, version=1, result_status=200, result_body=b"")
        clock.now += 1
    queue.bury(
        claimed[4].id, reason=DeadReason.NON_RETRIABLE, error_type="function_error",
        error="boom", version=1,
    )  # fmt: skip
    cutoff = clock.now - 1.5  # the first three finished before it
    assert queue.prune_done(cutoff, limit=2) == 2
    assert queue.prune_done(cutoff, limit=2) == 1
    assert queue.prune_done(cutoff, limit=2) == 0
    assert queue.counts() == {"done": 1, "dead": 1}


def test_retry_schedules_the_next_attempt_and_keeps_the_first_failure(
    store: Store, clock: Clock
) -> None:
    queue = queue_of(store, "a", clock)
    queue.enqueue(jobs(1))
    (job,) = queue.claim(1)
    queue.retry(job.id, delay_s=5, error_type="timeout", error="t1", version=2)
    first_failure = clock.now
    assert queue.claim(1) == []
    clock.now += 5
    (again,) = queue.claim(1)
    assert again.attempts == 2
    queue.retry(again.id, delay_s=1, error_type="timeout", error="t2", version=2)
    row = queue.get(job.id)
    assert row is not None
    assert row["first_failed_at"] == first_failure
    assert row["last_failed_at"] == clock.now
    assert row["last_error"] == "t2"


def _bury_all(queue: JobQueue, function: str, error_type: str, n: int, clock: Clock) -> None:
    queue.enqueue([NewJob(f"{function}-{i}", function, "database", b"{}") for i in range(n)])
    for job in queue.claim(n):
        queue.bury(
            job.id, reason=DeadReason.MAX_RETRIES_EXCEEDED, error_type=error_type,
            error="boom", version=1,
        )  # fmt: skip


def test_dead_letters_list_filter_redrive_and_purge(store: Store, clock: Clock) -> None:
    queue = queue_of(store, "a", clock)
    _bury_all(queue, "f", "timeout", 3, clock)
    _bury_all(queue, "g", "memory_limit_exceeded", 2, clock)
    everything, total = queue.dead_letters(DeadLetterFilter())
    assert total == 5 and len(everything) == 5
    only_f, total_f = queue.dead_letters(DeadLetterFilter(function="f"))
    assert total_f == 3 and {row["function_name"] for row in only_f} == {"f"}
    memory, _ = queue.dead_letters(DeadLetterFilter(error_type="memory_limit_exceeded"))
    assert {row["id"] for row in memory} == {"g-0", "g-1"}
    page, _ = queue.dead_letters(DeadLetterFilter(), limit=2, offset=4)
    assert len(page) == 1

    assert queue.redrive(DeadLetterFilter(id="f-0")) == 1
    (again,) = queue.claim(5)
    assert again.id == "f-0" and again.attempts == 1  # a fresh retry budget
    assert queue.redrive(DeadLetterFilter(function="g")) == 2
    assert queue.purge(DeadLetterFilter(function="f")) == 2
    assert queue.dead_letters(DeadLetterFilter())[1] == 0
    assert queue.counts() == {"queued": 2, "running": 1}


def row_jobs(key: str, seqs: list[int]) -> list[NewJob]:
    return [NewJob(f"{key}-{s}", "f", "database", b"{}", order_key=key, order_seq=s) for s in seqs]


def test_jobs_of_one_row_are_claimed_one_at_a_time_in_order(store: Store, clock: Clock) -> None:
    """A later job of the same key waits while an earlier one is queued, running or
    retrying; a dead letter lets the next go; jobs without a key are not held back."""
    queue = queue_of(store, "a", clock)
    queue.enqueue(row_jobs("r1", [3, 1, 2]) + row_jobs("r2", [7]) + jobs(1))
    assert {job.id for job in queue.claim(10)} == {"r1-1", "r2-7", "e0"}
    assert queue.claim(10) == []
    assert queue.next_due() is None  # r1-2 is due but held back: nothing to wake for
    assert queue.complete("r1-1", version=1, result_status=200, result_body=b"")
    assert [job.id for job in queue.claim(10)] == ["r1-2"]
    assert queue.retry("r1-2", delay_s=5, error_type="function_error", error="x", version=1)
    clock.now += 1
    assert queue.claim(10) == []  # r1-3 waits for the retry of r1-2
    assert queue.next_due() == clock.now + 4
    clock.now += 5
    assert [job.id for job in queue.claim(10)] == ["r1-2"]
    assert queue.bury(
        "r1-2", reason=DeadReason.NON_RETRIABLE, error_type="function_error", error="x", version=1
    )
    assert [job.id for job in queue.claim(10)] == ["r1-3"]


def completing(job: Job) -> Callable[[JobQueue], bool]:
    return lambda q: q.complete(
        job.id, version=1, result_status=200, result_body=b"", attempt=job.attempts
    )


def test_ends_written_in_one_batch_each_land_only_under_the_hold(
    store: Store, clock: Clock
) -> None:
    mine, theirs = queue_of(store, "a", clock), JobQueue(store, node="b", clock=clock, lease_s=10)
    mine.enqueue(jobs(3))
    claimed = mine.claim(3)
    assert len(claimed) == 3
    clock.now += 11
    assert mine.requeue_expired() == 3
    lost = theirs.claim(1)[0]  # its lease ran out and node b holds it now
    ends = [mine.plan(completing(job)) for job in claimed]
    landed = mine.write_ends(ends)
    assert landed == [job.id != lost.id for job in claimed]
    for job in claimed:
        expected = JobStatus.RUNNING if job.id == lost.id else JobStatus.DONE
        assert queue_of(store, "a", clock).status_of(job.id) is expected


def test_claim_takes_no_more_of_a_capped_function_than_its_free_slots(
    store: Store, clock: Clock
) -> None:
    queue = queue_of(store, "a", clock)
    queue.enqueue([NewJob(f"x{i}", "x", "database", b"{}") for i in range(10)])
    clock.now += 1
    queue.enqueue([NewJob(f"y{i}", "y", "database", b"{}") for i in range(3)])
    claimed = queue.claim(8, caps={"x": 2})
    # x's two oldest, then the other functions' jobs; not x's third although it is older.
    assert sorted(job.id for job in claimed) == ["x0", "x1", "y0", "y1", "y2"]
    assert queue.claim(8, caps={"x": 0}) == []  # x full: none of its jobs
    assert [job.id for job in queue.claim(8, caps={"x": 1})] == ["x2"]
    assert len(queue.claim(8)) == 7  # no cap: the rest, up to the limit
