"""A supervised pool of worker processes, driven from the server's event loop.

Each worker runs one job at a time. A worker that dies (segfault, `kill -9`, abort)
fails only the job it was running, with `RUNTIME_CRASH`, and is replaced at once. A
worker still busy past the job's timeout plus a grace period (stuck in a host call,
stopped, wedged) is killed and replaced, and its job ends as `TIMEOUT`.

Workers are `python -m wasmlet.runtime.worker FD` subprocesses on one end of a
socketpair. Messages are pickled and framed as `multiprocessing.connection` frames
them (the worker uses a `Connection`); this side reads and writes them with asyncio
streams, so a large payload never blocks the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import pickle
import signal
import socket
import struct
import subprocess
import sys
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from wasmlet.runtime.host import no_database
from wasmlet.runtime.outcome import HostCall, Job, Outcome, OutcomeKind
from wasmlet.runtime.worker import READY

WorkerEvent = Callable[[str, int, str], None]
"""Called with (event, pid, reason): event is "started", "crashed" or "killed"."""
HostCallHandler = Callable[[HostCall], Awaitable[bytes]]
"""Answers a guest's host call (db_query) on the server's side."""


async def _no_host_calls(call: HostCall) -> bytes:
    return no_database(call)


@dataclass(eq=False)
class _Worker:
    id: int
    process: subprocess.Popen[bytes]
    ready: asyncio.Future[None]
    writer: asyncio.StreamWriter | None = None
    reader_task: asyncio.Task[None] | None = None
    pending: asyncio.Future[Outcome] | None = None
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
    ) -> None:
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
        for waiter in self._waiters:
            if not waiter.done():
                waiter.cancel()
        workers = list(self._workers)
        for worker in workers:
            self._retire(worker)
        for worker in workers:
            await asyncio.to_thread(_reap, worker.process)
        self._workers.clear()

    async def run(self, job: Job, *, wait_until: float) -> Outcome:
        """Run `job` on a free worker; wait for one no later than `wait_until` (monotonic)."""
        try:
            worker = await self._acquire(wait_until)
        except TimeoutError:
            return Outcome(
                OutcomeKind.TIMEOUT, message="no free worker within the timeout", ran=False
            )
        loop = asyncio.get_running_loop()
        pending: asyncio.Future[Outcome] = loop.create_future()
        worker.pending = pending
        worker.watchdog = loop.call_later(
            job.timeout_ms / 1000 + self._grace_s, self._kill_stuck, worker, pending
        )
        assert worker.writer is not None
        try:
            worker.writer.write(_frame(pickle.dumps(job, protocol=pickle.HIGHEST_PROTOCOL)))
            await worker.writer.drain()
        except (ConnectionError, OSError):
            self._lost(worker, "crashed", self._exit_reason(worker))
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
                [sys.executable, "-m", "wasmlet.runtime.worker", str(child_sock.fileno())],
                pass_fds=(child_sock.fileno(),),
                stdin=subprocess.DEVNULL,
                env=_worker_env(),
            )
        loop = asyncio.get_running_loop()
        worker = _Worker(next(self._ids), process, loop.create_future())
        self._workers.add(worker)
        worker.reader_task = loop.create_task(self._serve(worker, parent_sock))
        return worker

    async def _serve(self, worker: _Worker, sock: socket.socket) -> None:
        """Read the worker's messages until its socket closes."""
        try:
            reader, worker.writer = await asyncio.open_connection(sock=sock)
            while True:
                self._on_message(worker, await _read_frame(reader))
        except (asyncio.IncompleteReadError, ConnectionError, OSError):
            self._lost(worker, "crashed", await asyncio.to_thread(self._exit_reason, worker))
        except asyncio.CancelledError:
            if worker.writer is None:
                sock.close()
            raise

    def _on_message(self, worker: _Worker, data: bytes) -> None:
        if not worker.ready.done():
            if data == READY:
                worker.ready.set_result(None)
                self._on_event("started", worker.pid, "")
                self._release(worker)
            return
        message = pickle.loads(data)
        if isinstance(message, HostCall):
            task = asyncio.get_running_loop().create_task(self._answer(worker, message))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            return
        pending, worker.pending = worker.pending, None
        if worker.watchdog is not None:
            worker.watchdog.cancel()
            worker.watchdog = None
        if pending is not None and not pending.done():
            pending.set_result(message)
        self._release(worker)

    async def _answer(self, worker: _Worker, call: HostCall) -> None:
        reply = await self._host_calls(call)
        if worker.alive and worker.writer is not None:
            try:
                worker.writer.write(_frame(reply))
                await worker.writer.drain()
            except (ConnectionError, OSError):
                pass  # the reader notices the dead worker

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
        worker.pending = None
        if not worker.ready.done():
            worker.ready.set_exception(RuntimeError(f"worker failed to start: {reason}"))
            worker.ready.exception()
        asyncio.get_running_loop().run_in_executor(None, _reap, worker.process)
        self._on_event(event, worker.pid, reason)
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
        if worker.writer is not None:
            worker.writer.close()
        if worker.reader_task is not None and worker.reader_task is not asyncio.current_task():
            worker.reader_task.cancel()


def _frame(payload: bytes) -> bytes:
    """A frame as `multiprocessing.connection.Connection.send_bytes` writes it."""
    size = len(payload)
    if size > 0x7FFFFFFF:
        return struct.pack("!i", -1) + struct.pack("!Q", size) + payload
    return struct.pack("!i", size) + payload


async def _read_frame(reader: asyncio.StreamReader) -> bytes:
    (size,) = struct.unpack("!i", await reader.readexactly(4))
    if size == -1:
        (size,) = struct.unpack("!Q", await reader.readexactly(8))
    return await reader.readexactly(size)


def _expire(waiter: asyncio.Future[_Worker]) -> None:
    if not waiter.done():
        waiter.set_exception(TimeoutError())


def _worker_env() -> dict[str, str]:
    """The server's environment minus its secrets: workers need none of them."""
    return {k: v for k, v in os.environ.items() if not k.endswith("_KEY") and "SECRET" not in k}


def _reap(process: subprocess.Popen[bytes]) -> None:
    try:
        process.wait(5)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
