"""A supervised pool of worker processes, driven from the server's event loop.

Each worker runs one job at a time. A worker that dies (segfault, `kill -9`, abort)
fails only the job it was running, with `RUNTIME_CRASH`, and is replaced at once. A
worker still busy past the job's timeout plus a grace period (stuck in a host call,
stopped, wedged) is killed and replaced, and its job ends as `TIMEOUT`.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import pickle
import signal
import socket
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection

from wasmlet.runtime.outcome import Job, Outcome, OutcomeKind
from wasmlet.runtime.worker import READY

WorkerEvent = Callable[[str, int, str], None]
"""Called with (event, pid, reason): event is "started", "crashed" or "killed"."""


@dataclass(eq=False)
class _Worker:
    id: int
    process: subprocess.Popen[bytes]
    conn: Connection
    ready: asyncio.Future[None]
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
    ) -> None:
        if size < 1:
            raise ValueError("a pool needs at least one worker")
        self.size = size
        self._grace_s = grace_s
        self._on_event = on_event or (lambda event, pid, reason: None)
        self._ids = itertools.count(1)
        self._workers: set[_Worker] = set()
        self._idle: deque[_Worker] = deque()
        self._waiters: deque[asyncio.Future[_Worker]] = deque()
        self._closed = False
        self.restarts = 0

    @property
    def alive(self) -> int:
        return sum(1 for w in self._workers if w.alive)

    @property
    def busy(self) -> int:
        return sum(1 for w in self._workers if w.pending is not None)

    def pids(self) -> list[int]:
        return sorted(w.pid for w in self._workers if w.alive)

    def busy_pids(self) -> list[int]:
        return sorted(w.pid for w in self._workers if w.alive and w.pending is not None)

    async def start(self) -> None:
        for _ in range(self.size):
            self._spawn()
        await asyncio.gather(*(w.ready for w in list(self._workers)))

    async def close(self) -> None:
        self._closed = True
        for waiter in self._waiters:
            if not waiter.done():
                waiter.cancel()
        for worker in list(self._workers):
            self._retire(worker)
            with contextlib.suppress(OSError):
                worker.conn.close()
        for worker in list(self._workers):
            await asyncio.to_thread(_reap, worker.process)
        self._workers.clear()

    async def run(self, job: Job, *, wait_until: float) -> Outcome:
        """Run `job` on a free worker; wait for one no later than `wait_until` (monotonic)."""
        try:
            worker = await self._acquire(wait_until)
        except TimeoutError:
            return Outcome(OutcomeKind.TIMEOUT, message="no free worker within the timeout")
        loop = asyncio.get_running_loop()
        pending: asyncio.Future[Outcome] = loop.create_future()
        worker.pending = pending
        try:
            worker.conn.send_bytes(pickle.dumps(job, protocol=pickle.HIGHEST_PROTOCOL))
        except OSError:
            self._lost(worker, "crashed", "pipe closed")
            return await pending
        worker.watchdog = loop.call_later(
            job.timeout_ms / 1000 + self._grace_s, self._kill_stuck, worker, pending
        )
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
        waiter: asyncio.Future[_Worker] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            return await asyncio.wait_for(waiter, max(0.0, wait_until - time.monotonic()))
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                self._release(waiter.result())
            raise
        finally:
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
        process = subprocess.Popen(
            [sys.executable, "-m", "wasmlet.runtime.worker", str(child_sock.fileno())],
            pass_fds=(child_sock.fileno(),),
            stdin=subprocess.DEVNULL,
            env=_worker_env(),
        )
        child_sock.close()
        parent = Connection(parent_sock.detach())
        loop = asyncio.get_running_loop()
        worker = _Worker(next(self._ids), process, parent, loop.create_future())
        self._workers.add(worker)
        loop.add_reader(parent.fileno(), self._on_readable, worker)
        return worker

    def _on_readable(self, worker: _Worker) -> None:
        try:
            data = worker.conn.recv_bytes()
        except (EOFError, OSError):
            self._lost(worker, "crashed", self._exit_reason(worker))
            return
        if not worker.ready.done():
            if data == READY:
                worker.ready.set_result(None)
                self._on_event("started", worker.pid, "")
                self._release(worker)
            return
        pending, worker.pending = worker.pending, None
        if worker.watchdog is not None:
            worker.watchdog.cancel()
            worker.watchdog = None
        if pending is not None and not pending.done():
            pending.set_result(pickle.loads(data))
        self._release(worker)

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
        with contextlib.suppress(OSError):
            worker.conn.close()
        if worker.pending is not None and not worker.pending.done():
            worker.pending.set_result(
                Outcome(OutcomeKind.RUNTIME_CRASH, message=f"worker process {reason}")
            )
        if not worker.ready.done():
            worker.ready.set_exception(RuntimeError(f"worker failed to start: {reason}"))
            worker.ready.exception()
        if worker.watchdog is not None:
            worker.watchdog.cancel()
        asyncio.get_running_loop().run_in_executor(None, _reap, worker.process)
        self._on_event(event, worker.pid, reason)
        if not self._closed:
            self.restarts += 1
            self._spawn()

    def _retire(self, worker: _Worker) -> None:
        if not worker.alive:
            return
        worker.alive = False
        with contextlib.suppress(ValueError, OSError):
            asyncio.get_running_loop().remove_reader(worker.conn.fileno())
        if worker.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                worker.process.kill()


def _worker_env() -> dict[str, str]:
    """The server's environment minus its secrets: workers need none of them."""
    return {k: v for k, v in os.environ.items() if not k.endswith("_KEY") and "SECRET" not in k}


def _reap(process: subprocess.Popen[bytes]) -> None:
    try:
        process.wait(5)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
