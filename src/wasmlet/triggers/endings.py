"""How an attempt at a job ended, as values, and the write that records it.

The dispatcher decides an `Ending`; `settle` writes it, retried through a database
outage until it lands, so a job whose end was decided is never left `running`. A
write that lands on no row means another node has the job now (its lease expired and
it was claimed again): that node's ending counts, this one is dropped.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

from wasmlet.backoff import Backoff, Streak
from wasmlet.triggers.queue import DeadReason, Job, JobQueue

SETTLE_FIRST_DELAY_S = 0.1
SETTLE_MAX_DELAY_S = 2.0


@dataclass(frozen=True, slots=True)
class Completed:
    version: int
    status: int
    body: bytes


@dataclass(frozen=True, slots=True)
class Retried:
    """A failed attempt with retries left."""

    delay_s: float
    error_type: str
    error: str
    status: int
    version: int


@dataclass(frozen=True, slots=True)
class Buried:
    """Into the dead letter queue."""

    reason: DeadReason
    error_type: str
    error: str
    status: int
    version: int | None


@dataclass(frozen=True, slots=True)
class Released:
    """Back to the queue, the attempt not counted: it never ran (or may run elsewhere)."""

    delay_s: float


Ending = Completed | Retried | Buried | Released


def record(queue: JobQueue, job: Job, ending: Ending) -> bool:
    """Write how the attempt ended; whether it landed (False: another node has the job)."""
    attempt = job.attempts
    match ending:
        case Completed(version, status, body):
            return queue.complete(
                job.id, version=version, result_status=status, result_body=body, attempt=attempt
            )
        case Retried(delay_s, error_type, error, _, version):
            return queue.retry(
                job.id, delay_s=delay_s, error_type=error_type, error=error, version=version,
                attempt=attempt,
            )  # fmt: skip
        case Buried(reason, error_type, error, status, version):
            return queue.bury(
                job.id, reason=reason, error_type=error_type, error=error, version=version,
                result_status=status, attempt=attempt,
            )  # fmt: skip
        case Released(delay_s):
            return queue.release(job.id, delay_s, attempt=attempt)


async def settle(
    queue: JobQueue,
    job: Job,
    ending: Ending,
    *,
    on_failure: Callable[[Exception, int], None],
    first_delay_s: float = SETTLE_FIRST_DELAY_S,
    max_delay_s: float = SETTLE_MAX_DELAY_S,
) -> bool:
    """`record`, retried with capped backoff until the store takes it; whether it landed.

    `on_failure(error, failures)` hears of every failed try. Only cancellation ends the
    retries: the caller keeps the job's lease renewed meanwhile.
    """
    failures = Streak(Backoff(base_s=first_delay_s, cap_s=max_delay_s))
    while True:
        try:
            return await asyncio.to_thread(record, queue, job, ending)
        except Exception as exc:  # the store is away or busy: the same write again, later
            delay = failures.failed()
            on_failure(exc, failures.failures)
            await asyncio.sleep(delay)
