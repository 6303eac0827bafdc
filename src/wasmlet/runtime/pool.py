"""A supervised pool of worker processes, driven from the server's event loop.

Each worker runs one job at a time. A worker that dies (segfault, `kill -9`, abort)
fails only the job it was running, with `RUNTIME_CRASH`, and is replaced at once. A
worker still busy past the job's timeout plus a grace period (stuck in a host call,
stopped, wedged) is killed and replaced, and its job ends as `TIMEOUT`.

Workers are `python -m wasmlet.runtime.worker FD` subprocesses on one end of a
socketpair, started with an allow-listed environment (`child_env`): they run guest
code, so they hold no database URL, password or key. Messages are data-only frames
(`wire`), read by a `FrameChannel` protocol on the event loop, so a large payload
never blocks it. The pool checks each frame against what the worker may send at that
moment (READY once, then only a host call or the outcome of the job it runs, one host
call at a time); anything else is a protocol violation: the worker is killed and
replaced, and its job ends as `RUNTIME_CRASH`, as for a crash.

A worker that dies before it is ready is replaced after a growing pause (`START_BACKOFF_S`,
doubling, at most `MAX_START_BACKOFF_S`), not at once: a broken install (a missing
module, an unusable interpreter) must not turn the pool into a fork loop. While no
worker is up and every start so far has failed, `run` answers at once with
`RUNTIME_CRASH` (not run) naming the start failure, instead of waiting for a worker.
A host-call handler that raises is a server fault: the guest gets the call's
"unavailable" error (`db_unavailable`, `connect_failed`) and the worker carries on.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import signal
import socket
import subprocess
import sys
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from wasmlet.backoff import Backoff
from wasmlet.runtime import wire
from wasmlet.runtime.channel import FrameChannel
from wasmlet.runtime.child_env import child_environment
from wasmlet.runtime.host import host_call_failed, no_database
from wasmlet.runtime.outcome import HostCall, Job, Outcome, OutcomeKind
from wasmlet.runtime.wire import Kind, ProtocolError
from wasmlet.telemetry.logs import get_logger

WorkerEvent = Callable[[str, int, str], None]
"""Called with (event, pid, reason): event is "started", "crashed" or "killed"."""
HostCallHandler = Callable[[HostCall], Awaitable[bytes]]
"""Answers a guest's host call (db_query, http_request) on the server's side."""
WORKER_ARGV = (sys.executable, "-m", "wasmlet.runtime.worker")
START_BACKOFF_S = 0.1
MAX_START_BACKOFF_S = 30.0
START_BACKOFF = Backoff(base_s=START_BACKOFF_S, cap_s=MAX_START_BACKOFF_S, jitter=0.1)


async def _no_host_calls(call: HostCall) -> bytes:
    return no_database(call)


@dataclass(eq=False)
class _Worker:
    id: int
    process: subprocess.Popen[bytes]
    ready: asyncio.Future[None]
    channel: FrameChannel
    connecting: asyncio.Task[None] | None = None
    job: Job | None = None
    deadline: float = 0.0  # time.monotonic() when the job's timeout ends
    pending: asyncio.Future[Outcome] | None = None
    in_host_call: bool = False
    watchdog: asyncio.TimerHandle | None = None
    alive: bool = True

    @property
    def pid(self) -> int:
        return self.process.pid


class WorkerPool:
    def __init__(
        self,
        size: int,
        *,
        grace_s: float = 1.0,
        on_event: WorkerEvent | None = None,
        host_calls: HostCallHandler = _no_host_calls,
        worker_argv: Sequence[str] = WORKER_ARGV,
    ) -> None:
        """`worker_argv` is the worker's command (the socket's fd is appended)."""
        if size < 1:
            raise ValueError("a pool needs at least one worker")
        self.size = size
        self._grace_s = grace_s
        self._on_event = on_event or (lambda event, pid, reason: None)
        self._host_calls = host_calls
        self._tasks: set[asyncio.Task[None]] = set()
        self._ids = itertools.count(1)
        self._workers: set[_Worker] = set()
        self._idle: deque[_Worker] = deque()
        self._waiters: deque[asyncio.Future[_Worker]] = deque()
        self._closed = False
        self._argv = tuple(worker_argv)
        self._failed_starts = 0  # in a row, reset by a worker that becomes ready
        self._respawns: set[asyncio.TimerHandle] = set()
        self._start_failure = ""
        self._log = get_logger("worker")

    @property
    def alive(self) -> int:
        return sum(1 for w in self._workers if w.alive and w.ready.done())

    @property
    def busy(self) -> int:
        return sum(1 for w in self._workers if w.pending is not None)

    async def start(self) -> None:
        for _ in range(self.size):
            self._spawn()
        await asyncio.gather(*(w.ready for w in list(self._workers)))

    async def close(self) -> None:
        self._closed = True
        for handle in self._respawns:
            handle.cancel()
        for waiter in self._waiters:
            if not waiter.done():
                waiter.cancel()
        workers = list(self._workers)
        for worker in workers:
            self._retire(worker)
        for worker in workers:
            await asyncio.to_thread(_reap, worker.process)
        self._workers.clear()

    @property
    def unavailable(self) -> bool:
        """No worker is up, and every start since the last good one has failed."""
        return self._failed_starts >= self.size and self.alive == 0

    async def run(self, job: Job, *, wait_until: float) -> Outcome:
        """Run `job` on a free worker; wait for one no later than `wait_until` (monotonic)."""
        if self.unavailable:
            return Outcome(
                OutcomeKind.RUNTIME_CRASH,
                message=f"no worker process can start: {self._start_failure}",
                ran=False,
            )
        try:
            worker = await self._acquire(wait_until)
        except TimeoutError:
            return Outcome(
                OutcomeKind.TIMEOUT, message="no free worker within the timeout", ran=False
            )
        try:
            frame = wire.encode_job(job)
        except (ValueError, OverflowError, TypeError) as exc:
            self._release(worker)
            return Outcome(
                OutcomeKind.RUNTIME_CRASH, message=f"job cannot be sent: {exc}", ran=False
            )
        loop = asyncio.get_running_loop()
        pending: asyncio.Future[Outcome] = loop.create_future()
        worker.job, worker.pending = job, pending
        worker.deadline = time.monotonic() + job.timeout_ms / 1000
        worker.channel.max_frame = max(wire.outcome_limit(job), wire.MAX_HOST_CALL_BYTES)
        worker.watchdog = loop.call_later(
            job.timeout_ms / 1000 + self._grace_s, self._kill_stuck, worker, pending
        )
        worker.channel.send(frame)
        return await asyncio.shield(pending)

    def _kill_stuck(self, worker: _Worker, pending: asyncio.Future[Outcome]) -> None:
        if worker.pending is not pending or pending.done():
            return
        pending.set_result(
            Outcome(OutcomeKind.TIMEOUT, message="worker stuck past the timeout; killed")
        )
        self._lost(worker, "killed", "stuck past timeout and grace")

    async def _acquire(self, wait_until: float) -> _Worker:
        while self._idle:
            worker = self._idle.popleft()
            if worker.alive:
                return worker
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[_Worker] = loop.create_future()
        self._waiters.append(waiter)
        timer = loop.call_at(loop.time() + max(0.0, wait_until - time.monotonic()), _expire, waiter)
        try:
            return await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                self._release(waiter.result())
            raise
        finally:
            timer.cancel()
            if not waiter.done() or waiter.cancelled() or waiter.exception() is not None:
                with contextlib.suppress(ValueError):
                    self._waiters.remove(waiter)

    def _release(self, worker: _Worker) -> None:
        if not worker.alive:
            return
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(worker)
                return
        self._idle.append(worker)

    def _spawn(self) -> _Worker:
        parent_sock, child_sock = socket.socketpair()
        with child_sock:
            process = subprocess.Popen(
                [*self._argv, str(child_sock.fileno())],
                pass_fds=(child_sock.fileno(),),
                stdin=subprocess.DEVNULL,
                env=child_environment(),
            )
        loop = asyncio.get_running_loop()
        worker: _Worker

        def on_frame(kind: Kind, body: memoryview) -> None:
            self._on_frame(worker, kind, body)

        def on_violation(reason: str) -> None:
            self._lost(worker, "killed", f"protocol violation: {reason}")

        def on_lost() -> None:
            self._track(self._crashed(worker))

        channel = FrameChannel(on_frame, on_violation, on_lost, max_frame=0)
        worker = _Worker(next(self._ids), process, loop.create_future(), channel)
        self._workers.add(worker)
        worker.connecting = loop.create_task(self._connect(worker, parent_sock))
        return worker

    async def _connect(self, worker: _Worker, sock: socket.socket) -> None:
        try:
            await asyncio.get_running_loop().create_connection(lambda: worker.channel, sock=sock)
        except BaseException:
            sock.close()
            raise

    async def _crashed(self, worker: _Worker) -> None:
        reason = await asyncio.to_thread(self._exit_reason, worker)
        self._lost(worker, "crashed", reason)

    def _track(self, coro: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _on_frame(self, worker: _Worker, kind: Kind, body: memoryview) -> None:
        """One frame from a worker; raises ProtocolError for anything not expected now."""
        if not worker.ready.done():
            if kind is not Kind.READY or body:
                raise ProtocolError(f"{kind.name} before READY")
            worker.ready.set_result(None)
            self._failed_starts = 0
            self._on_event("started", worker.pid, "")
            self._release(worker)
            return
        job = worker.job
        if job is None or worker.pending is None or worker.in_host_call:
            raise ProtocolError(f"{kind.name} while no answer is expected")
        if kind is Kind.HOST_CALL:
            call = wire.decode_host_call(
                body,
                invocation_id=job.invocation_id,
                function=job.argv[0] if job.argv else "",
                deadline=worker.deadline,
                allowed_hosts=job.allowed_hosts,
            )
            worker.in_host_call = True
            self._track(self._answer(worker, job, call))
            return
        if kind is not Kind.OUTCOME:
            raise ProtocolError(f"{kind.name} from a worker")
        outcome = wire.decode_outcome(body)
        pending, worker.pending, worker.job = worker.pending, None, None
        worker.channel.max_frame = 0
        if worker.watchdog is not None:
            worker.watchdog.cancel()
            worker.watchdog = None
        if not pending.done():
            pending.set_result(outcome)
        self._release(worker)

    async def _answer(self, worker: _Worker, job: Job, call: HostCall) -> None:
        try:
            reply = await self._host_calls(call)
        except Exception as exc:  # a server fault: the guest must not wait for its timeout
            self._log.error(
                "host call failed",
                function=call.function,
                request_id=call.invocation_id,
                error=f"{type(exc).__name__}: {exc}",
            )
            reply = host_call_failed(call, f"the server could not answer ({type(exc).__name__})")
        if worker.alive and worker.job is job and worker.in_host_call:
            worker.in_host_call = False
            worker.channel.send(wire.encode_reply(reply))

    def _exit_reason(self, worker: _Worker) -> str:
        try:
            code = worker.process.wait(0.5)
        except subprocess.TimeoutExpired:
            return "connection lost"
        if code < 0:
            return f"killed by signal {signal.Signals(-code).name}"
        return f"exited with code {code}"

    def _lost(self, worker: _Worker, event: str, reason: str) -> None:
        """A worker is gone or must go: fail its job, replace it."""
        if not worker.alive:
            return
        self._retire(worker)
        self._workers.discard(worker)
        if worker.pending is not None and not worker.pending.done():
            worker.pending.set_result(
                Outcome(OutcomeKind.RUNTIME_CRASH, message=f"worker process {reason}")
            )
        worker.pending = worker.job = None
        was_ready = worker.ready.done()
        if not was_ready:
            worker.ready.set_exception(RuntimeError(f"worker failed to start: {reason}"))
            worker.ready.exception()
        loop = asyncio.get_running_loop()
        loop.run_in_executor(None, _reap, worker.process)
        self._on_event(event, worker.pid, reason)
        if self._closed:
            return
        if was_ready:
            self._spawn()
            return
        self._failed_starts += 1
        self._start_failure = reason
        pause = START_BACKOFF.delay(self._failed_starts - 1)
        self._respawns.add(loop.call_later(pause, self._respawn))

    def _respawn(self) -> None:
        now = asyncio.get_running_loop().time()
        self._respawns = {handle for handle in self._respawns if handle.when() > now}
        if not self._closed:
            self._spawn()

    def _retire(self, worker: _Worker) -> None:
        if not worker.alive:
            return
        worker.alive = False
        if worker.watchdog is not None:
            worker.watchdog.cancel()
        if worker.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                worker.process.kill()
        worker.channel.close()
        if worker.connecting is not None and not worker.connecting.done():
            worker.connecting.cancel()


def _expire(waiter: asyncio.Future[_Worker]) -> None:
    if not waiter.done():
        waiter.set_exception(TimeoutError())


def _reap(process: subprocess.Popen[bytes]) -> None:
    try:
        process.wait(5)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
