"""The pool's channel to its workers, under asyncio's loop and uvloop (the server's).

`FrameChannel` runs on a real socketpair; the pool runs real worker processes.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import socket
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import uvloop

from tests.support.build import build_c, wat
from wasmlet.runtime import wire
from wasmlet.runtime.channel import BUFFER_BYTES, FrameChannel
from wasmlet.runtime.compiler import ModuleCompiler
from wasmlet.runtime.outcome import HostCall, Job, OutcomeKind
from wasmlet.runtime.pool import WorkerPool
from wasmlet.runtime.wire import Kind

MB = 1 << 20
_ids = itertools.count()

LoopRunner = Callable[[Coroutine[Any, Any, None]], None]


@pytest.fixture(params=["asyncio", "uvloop"])
def run_loop(request: pytest.FixtureRequest) -> LoopRunner:
    def run(coro: Coroutine[Any, Any, None]) -> None:
        if request.param == "uvloop":
            uvloop.run(coro)
        else:
            asyncio.run(coro)

    return run


class Received:
    def __init__(self) -> None:
        self.frames: list[tuple[Kind, bytes]] = []
        self.violations: list[str] = []
        self.lost = asyncio.Event()
        self.changed = asyncio.Event()

    def frame(self, kind: Kind, body: memoryview) -> None:
        self.frames.append((kind, bytes(body)))
        self.changed.set()

    def violation(self, reason: str) -> None:
        self.violations.append(reason)
        self.changed.set()

    def gone(self) -> None:
        self.lost.set()

    async def until(self, check: Callable[[], bool]) -> None:
        async with asyncio.timeout(10):
            while not check():
                self.changed.clear()
                await self.changed.wait()


async def open_channel(max_frame: int = 64 * MB) -> tuple[Received, FrameChannel, socket.socket]:
    ours, theirs = socket.socketpair()
    received = Received()
    channel = FrameChannel(received.frame, received.violation, received.gone, max_frame=max_frame)
    await asyncio.get_running_loop().create_connection(lambda: channel, sock=ours)
    theirs.setblocking(False)
    return received, channel, theirs


async def send(sock: socket.socket, data: bytes) -> None:
    await asyncio.get_running_loop().sock_sendall(sock, data)


def test_frames_are_reassembled_however_the_bytes_arrive(run_loop: LoopRunner) -> None:
    big = bytes(range(256)) * (3 * BUFFER_BYTES // 256 + 7)  # larger than the buffer
    frames = [(Kind.READY, b""), (Kind.OUTCOME, b"x" * 1000), (Kind.HOST_CALL, big)]
    stream = b"".join(wire.frame(kind, body) for kind, body in frames)

    async def main() -> None:
        received, channel, theirs = await open_channel()
        for i in range(0, 64):  # byte by byte, headers split
            await send(theirs, stream[i : i + 1])
        await send(theirs, stream[64 : 64 + BUFFER_BYTES - 3])
        await send(theirs, stream[64 + BUFFER_BYTES - 3 :])
        await send(theirs, stream * 3)  # several frames at once
        await received.until(lambda: len(received.frames) == 12)
        assert received.frames == frames * 4
        assert received.violations == []
        theirs.close()
        async with asyncio.timeout(10):
            await received.lost.wait()
        channel.close()

    run_loop(main())


def test_an_oversize_or_unknown_frame_is_a_violation_before_its_body(
    run_loop: LoopRunner,
) -> None:
    async def main() -> None:
        received, channel, theirs = await open_channel(max_frame=100)
        await send(theirs, wire.HEADER.pack(101, Kind.OUTCOME))  # no body follows
        await received.until(lambda: bool(received.violations))
        assert "over the bound" in received.violations[0]
        await send(theirs, wire.frame(Kind.READY, b""))  # nothing after a violation
        channel.close()
        theirs.close()
        assert received.frames == []

        received, channel, theirs = await open_channel()
        await send(theirs, wire.HEADER.pack(0, 99))
        await received.until(lambda: bool(received.violations))
        assert received.violations == ["unknown frame kind 99"]
        channel.close()
        theirs.close()
        for _ in range(5):
            await asyncio.sleep(0)
        assert not received.lost.is_set()  # a close we asked for is no loss

    run_loop(main())


@pytest.fixture(scope="module")
def compiler(tmp_path_factory: pytest.TempPathFactory) -> ModuleCompiler:
    return ModuleCompiler(tmp_path_factory.mktemp("compiled"))


def job_for(compiler: ModuleCompiler, wasm: bytes, stdin: bytes, **limits: int) -> Job:
    module = compiler.compile(wasm)
    return Job(
        invocation_id=f"inv-{next(_ids)}",
        module_key=module.key,
        module_path=str(module.path),
        stdin=stdin,
        env={},
        argv=("fn",),
        timeout_ms=limits.get("timeout_ms", 10_000),
        memory_limit_bytes=128 * MB,
        stdout_limit=limits.get("stdout_limit", MB),
        stderr_limit=64 * 1024,
    )


async def no_host_calls(call: HostCall) -> bytes:
    raise AssertionError(f"unexpected host call {call}")


async def with_pool(
    body: Callable[[WorkerPool], Awaitable[None]],
    host_calls: Callable[[HostCall], Awaitable[bytes]] = no_host_calls,
) -> None:
    pool = WorkerPool(1, host_calls=host_calls)
    await pool.start()
    try:
        await body(pool)
    finally:
        await pool.close()


def test_several_megabytes_each_way_while_the_loop_keeps_running(
    run_loop: LoopRunner, compiler: ModuleCompiler
) -> None:
    payload = bytes(range(256)) * (8 * MB // 256)
    job = job_for(compiler, wat("echo"), payload, stdout_limit=16 * MB)

    async def main(pool: WorkerPool) -> None:
        ticks = 0

        async def tick() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0)

        ticker = asyncio.create_task(tick())
        outcome = await pool.run(job, wait_until=time.monotonic() + 30)
        ticker.cancel()
        assert outcome.kind is OutcomeKind.OK, outcome.message
        assert outcome.stdout == payload
        assert ticks > 1  # the loop ran other work while the job was on the wire

    run_loop(with_pool(main))


def test_a_host_call_gets_its_identity_and_deadline_from_the_job(
    run_loop: LoopRunner, compiler: ModuleCompiler
) -> None:
    job = job_for(compiler, build_c("db_exec"), b'SELECT $1 AS v\n[7, {"a": [null]}]')
    calls: list[HostCall] = []

    async def answer(call: HostCall) -> bytes:
        calls.append(call)
        return json.dumps({"rows": [{"v": 7}], "row_count": 1}).encode()

    async def main(pool: WorkerPool) -> None:
        started = time.monotonic()
        outcome = await pool.run(job, wait_until=started + 30)
        assert outcome.kind is OutcomeKind.OK, outcome.message
        assert json.loads(outcome.stdout) == {"rows": [{"v": 7}], "row_count": 1}
        (call,) = calls
        assert (call.kind, call.text, call.params) == (
            "db_query",
            "SELECT $1 AS v",
            [7, {"a": [None]}],
        )
        assert (call.invocation_id, call.function) == (job.invocation_id, "fn")
        assert started < call.deadline <= time.monotonic() + job.timeout_ms / 1000

    run_loop(with_pool(main, answer))


def test_a_job_that_cannot_be_encoded_fails_alone(
    run_loop: LoopRunner, compiler: ModuleCompiler
) -> None:
    good = job_for(compiler, wat("hello"), b"")
    unencodable = replace(good, env={"A": "\ud800"})  # a lone surrogate from a JSON secret

    async def main(pool: WorkerPool) -> None:
        outcome = await pool.run(unencodable, wait_until=time.monotonic() + 30)
        assert outcome.kind is OutcomeKind.RUNTIME_CRASH
        assert not outcome.ran
        assert (await pool.run(good, wait_until=time.monotonic() + 30)).ok
        assert pool.alive == 1

    run_loop(with_pool(main))


def child_workers() -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except (OSError, NotADirectoryError):
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        if parent == os.getpid() and b"wasmlet.runtime.worker" in cmdline:
            pids.append(int(entry.name))
    return pids


def test_workers_get_only_the_allow_listed_environment(
    run_loop: LoopRunner, compiler: ModuleCompiler, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WASMLET_DATABASE_URL", "postgresql://u:hunter2@127.0.0.1/db")
    monkeypatch.setenv("PGPASSWORD", "hunter2")
    monkeypatch.setenv("LC_ALL", "C.UTF-8")

    async def main(pool: WorkerPool) -> None:
        (pid,) = child_workers()
        environ = Path(f"/proc/{pid}/environ").read_bytes()
        assert b"hunter2" not in environ
        assert b"LC_ALL=C.UTF-8" in environ.split(b"\0")

    run_loop(with_pool(main))


def test_a_query_the_wire_cannot_carry_is_a_query_error_for_the_guest(
    run_loop: LoopRunner, compiler: ModuleCompiler
) -> None:
    job = job_for(compiler, build_c("db_exec"), b"SELECT $1\n[100000000000000000000000]")

    async def main(pool: WorkerPool) -> None:
        outcome = await pool.run(job, wait_until=time.monotonic() + 30)
        assert outcome.kind is OutcomeKind.EXIT_ERROR
        assert outcome.host_error is not None
        assert outcome.host_error[0] == "query_error"
        assert pool.alive == 1

    run_loop(with_pool(main))  # no_host_calls: the server is never asked
