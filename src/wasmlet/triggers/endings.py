"""How an attempt at a job ended, as values, and the write that records it.

The dispatcher decides an `Ending`; `settle` writes it, retried through a database
outage until it lands, so a job whose end was decided is never left `running`. A
write that lands on no row means another node has the job now (its lease expired and
it was claimed again): that node's ending counts, this one is dropped.

`EndWriter` writes the ends of many jobs together: whatever is waiting when the
previous write returns goes in the next one (one transaction, one round trip on
PostgreSQL), so a lone end is written at once and a busy node writes in batches. Each
end in a batch is the same conditional write as alone; a batch that fails lands none
of them, and each is then written on its own by `settle`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

from wasmlet.backoff import Backoff, Streak
from wasmlet.tasks import cancel_and_wait
from wasmlet.triggers.queue import DeadReason, Job, JobQueue

SETTLE_FIRST_DELAY_S = 0.1
SETTLE_MAX_DELAY_S = 2.0
MAX_BATCH = 200


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


OnFailure = Callable[[Exception, int], None]


def _writing(job: Job, ending: Ending) -> Callable[[JobQueue], bool]:
    return lambda queue: record(queue, job, ending)


@dataclass(slots=True)
class _Waiting:
    job: Job
    ending: Ending
    on_failure: OnFailure
    landed: asyncio.Future[bool]


class EndWriter:
    """Writes job ends in batches; `settle` returns whether the job's end landed."""

    def __init__(self, queue: JobQueue, *, max_batch: int = MAX_BATCH) -> None:
        self._queue = queue
        self._max_batch = max_batch
        self._waiting: list[_Waiting] = []
        self._writing: list[_Waiting] = []  # the batch being written now
        self._kick = asyncio.Event()
        self._alone: set[asyncio.Task[None]] = set()
        self._task: asyncio.Task[None] | None = None
        self.batches = 0  # batches written (landed or not)
        self.largest_batch = 0

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="dispatcher-ends")

    async def close(self) -> None:
        """After the deliveries ended: ends still waiting are left to their leases."""
        await cancel_and_wait(self._task, *self._alone)
        for waiting in [*self._writing, *self._waiting]:
            waiting.landed.cancel()
        self._waiting.clear()

    async def settle(self, job: Job, ending: Ending, *, on_failure: OnFailure) -> bool:
        landed: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._waiting.append(_Waiting(job, ending, on_failure, landed))
        self._kick.set()
        return await landed

    async def _run(self) -> None:
        while True:
            await self._kick.wait()
            self._kick.clear()
            while self._waiting:
                self._writing = self._waiting[: self._max_batch]
                del self._waiting[: self._max_batch]
                await self._write(self._writing)
                self._writing = []

    async def _write(self, batch: list[_Waiting]) -> None:
        queue = self._queue
        self.batches += 1
        self.largest_batch = max(self.largest_batch, len(batch))
        try:
            ends = [queue.plan(_writing(w.job, w.ending)) for w in batch]
            landed = await asyncio.to_thread(queue.write_ends, ends)
        except Exception as exc:  # none landed: each on its own, retried until it lands
            for waiting in batch:
                waiting.on_failure(exc, 1)
                task = asyncio.create_task(self._alone_write(waiting))
                self._alone.add(task)
                task.add_done_callback(self._alone.discard)
            return
        for waiting, ok in zip(batch, landed, strict=True):
            if not waiting.landed.done():
                waiting.landed.set_result(ok)

    async def _alone_write(self, waiting: _Waiting) -> None:
        await asyncio.sleep(SETTLE_FIRST_DELAY_S)
        try:
            ok = await settle(
                self._queue, waiting.job, waiting.ending,
                on_failure=lambda exc, n: waiting.on_failure(exc, n + 1),
            )  # fmt: skip
        except asyncio.CancelledError:
            waiting.landed.cancel()
            raise
        if not waiting.landed.done():
            waiting.landed.set_result(ok)
