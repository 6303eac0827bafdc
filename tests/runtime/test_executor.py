"""The real compiler and executor against every example guest, in WAT and in C.

Each test deploys bytes through `ModuleCompiler` (validation, instrumentation,
compilation) and runs them through one `Executor`, so what is checked here is what a
worker does for a real invocation.
"""

from __future__ import annotations

import gc
import itertools
import time
from collections.abc import Callable, Iterator
from typing import Protocol

import pytest

from tests.support.build import build_c, wat
from wasmlet.runtime.compiler import ModuleCompiler
from wasmlet.runtime.engine import POOL_SLOTS
from wasmlet.runtime.executor import Executor
from wasmlet.runtime.outcome import Job, LogLevel, Outcome, OutcomeKind

MB = 1024 * 1024
LIMIT_128_MB = 128 * MB

_ids = itertools.count()


class Run(Protocol):
    def __call__(
        self,
        wasm: bytes,
        *,
        stdin: bytes = b"",
        env: dict[str, str] | None = None,
        timeout_ms: int = 5000,
        memory_limit_bytes: int = LIMIT_128_MB,
        stdout_limit: int = MB,
        stderr_limit: int = 64 * 1024,
    ) -> Outcome: ...


Build = Callable[[str], bytes]

both_languages = pytest.mark.parametrize("build", [wat, build_c], ids=["wat", "c"])


@pytest.fixture(scope="module")
def executor() -> Iterator[Executor]:
    with Executor() as executor:
        yield executor


@pytest.fixture(scope="module")
def run(executor: Executor, tmp_path_factory: pytest.TempPathFactory) -> Run:
    compiler = ModuleCompiler(tmp_path_factory.mktemp("compiled"))

    def run(
        wasm: bytes,
        *,
        stdin: bytes = b"",
        env: dict[str, str] | None = None,
        timeout_ms: int = 5000,
        memory_limit_bytes: int = LIMIT_128_MB,
        stdout_limit: int = MB,
        stderr_limit: int = 64 * 1024,
    ) -> Outcome:
        module = compiler.compile(wasm)
        job = Job(
            invocation_id=f"test-{next(_ids)}",
            module_key=module.key,
            module_path=str(module.path),
            stdin=stdin,
            env=env or {},
            argv=("function",),
            timeout_ms=timeout_ms,
            memory_limit_bytes=memory_limit_bytes,
            stdout_limit=stdout_limit,
            stderr_limit=stderr_limit,
        )
        return executor.run(job)

    return run


@both_languages
def test_hello_answers_with_its_stdout(run: Run, build: Build) -> None:
    outcome = run(build("hello"))

    assert outcome.kind is OutcomeKind.OK, outcome.message
    assert outcome.exit_code == 0
    assert outcome.stdout == b"Hello, wasmlet!"
    assert outcome.stderr == b""


@both_languages
def test_echo_returns_its_stdin(run: Run, build: Build) -> None:
    payload = bytes(range(256)) * 600  # past one 64 KiB read, and not text

    outcome = run(build("echo"), stdin=payload)

    assert outcome.kind is OutcomeKind.OK, outcome.message
    assert outcome.stdout == payload


@both_languages
def test_infinite_loop_times_out_and_the_executor_recovers(run: Run, build: Build) -> None:
    module = build("infinite_loop")
    started = time.monotonic()
    outcome = run(module, timeout_ms=300)
    elapsed = time.monotonic() - started

    assert outcome.kind is OutcomeKind.TIMEOUT, outcome.message
    assert elapsed < 60  # a bound against a hang: the guest never ends by itself
    after = run(build("hello"))
    assert after.kind is OutcomeKind.OK, after.message
    assert after.stdout == b"Hello, wasmlet!"


@both_languages
def test_memory_hog_over_the_limit_is_a_memory_limit(run: Run, build: Build) -> None:
    outcome = run(build("memory_hog"), memory_limit_bytes=LIMIT_128_MB)

    assert outcome.kind is OutcomeKind.MEMORY_LIMIT, outcome.message


def test_memory_hog_under_a_larger_limit_succeeds(run: Run) -> None:
    outcome = run(build_c("memory_hog"), memory_limit_bytes=512 * MB)

    assert outcome.kind is OutcomeKind.OK, outcome.message
    assert outcome.stdout == b"42\n"


def test_memory_hog_in_c_fails_in_its_own_way_first(run: Run) -> None:
    outcome = run(build_c("memory_hog"), memory_limit_bytes=LIMIT_128_MB)

    assert outcome.exit_code == 1
    assert b"malloc(209715200) failed" in outcome.stderr


@both_languages
def test_trap_is_a_trap(run: Run, build: Build) -> None:
    outcome = run(build("trap"))

    assert outcome.kind is OutcomeKind.TRAP
    assert outcome.exit_code is None
    assert outcome.message == "trap: unreachable"


@both_languages
def test_error_exit_keeps_code_and_stderr(run: Run, build: Build) -> None:
    outcome = run(build("error_exit"))

    assert outcome.kind is OutcomeKind.EXIT_ERROR
    assert outcome.exit_code == 1
    assert b"Email service down" in outcome.stderr


def test_stack_overflow_is_a_trap_not_a_memory_limit(run: Run) -> None:
    outcome = run(build_c("stack_overflow"))

    assert outcome.kind is OutcomeKind.TRAP, outcome.message
    assert outcome.message == "trap: stack_overflow"


def test_host_imports_set_status_headers_and_logs(run: Run) -> None:
    outcome = run(build_c("headers"), stdin=b'{"name":"ada"}')

    assert outcome.kind is OutcomeKind.OK, outcome.message
    assert outcome.status == 201
    assert ("x-powered-by", "wasmlet") in outcome.headers
    assert ("content-type", "application/json") in outcome.headers
    assert (LogLevel.INFO, "created") in outcome.logs
    assert outcome.stdout == b'{"created":{"name":"ada"}}'


REFUSED_ARGUMENTS = r"""
(module
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasmlet" "log" (func $log (param i32 i32 i32) (result i32)))
  (import "wasmlet" "set_status" (func $set_status (param i32) (result i32)))
  (import "wasmlet" "set_header" (func $set_header (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 100) "content-lengthx-ok")
  ;; Each result r is stored as the byte r + '1': "0" for -1 (refused), "1" for 0 (done).
  (func $record (param $at i32) (param $result i32)
    (i32.store8 (local.get $at) (i32.add (local.get $result) (i32.const 0x31))))
  (func (export "_start")
    (call $record (i32.const 16) (call $set_status (i32.const 99)))
    (call $record (i32.const 17) (call $set_status (i32.const 204)))
    (call $record (i32.const 18) (call $log (i32.const 7) (i32.const 100) (i32.const 1)))
    (call $record (i32.const 19) (call $log (i32.const 1) (i32.const 100) (i32.const 0x7fffffff)))
    (call $record (i32.const 20)
      (call $set_header (i32.const 100) (i32.const 14) (i32.const 114) (i32.const 2)))
    (call $record (i32.const 21)
      (call $set_header (i32.const 114) (i32.const 4) (i32.const 114) (i32.const 2)))
    (i32.store (i32.const 0) (i32.const 16))
    (i32.store (i32.const 4) (i32.const 6))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))
"""


def test_host_imports_refuse_bad_arguments(run: Run) -> None:
    outcome = run(wat(REFUSED_ARGUMENTS))

    assert outcome.kind is OutcomeKind.OK, outcome.message
    # status 99 refused, 204 set; level 7 refused, a range past memory refused;
    # a host-owned header refused, "x-ok" set.
    assert outcome.stdout == b"010001"
    assert outcome.status == 204
    assert outcome.headers == [("x-ok", "x-")]
    assert outcome.logs == []


def test_printing_past_the_stdout_limit_stops_before_the_timeout(run: Run) -> None:
    module = wat("print_forever")
    started = time.monotonic()
    outcome = run(module, stdout_limit=64 * 1024, timeout_ms=120_000)
    elapsed = time.monotonic() - started

    assert outcome.kind is OutcomeKind.OUTPUT_LIMIT, outcome.message
    assert len(outcome.stdout) == 64 * 1024
    assert elapsed < 60  # the guest was stopped by the cap, long before its timeout


def test_guest_sees_only_the_given_env_and_no_files(
    run: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WASMLET_HOST_SECRET", "must-not-leak")
    env = {"WASMLET_FUNCTION": "env-dump", "GREETING": "hello world"}

    outcome = run(build_c("env_dump"), env=env)

    assert outcome.kind is OutcomeKind.OK, outcome.message
    lines = outcome.stdout.decode().splitlines()
    assert sorted(lines[:-1]) == ["GREETING=hello world", "WASMLET_FUNCTION=env-dump"]
    assert lines[-1] == "no-fs"


HIGH_POINTER_LOG = r"""
(module
  (import "wasmlet" "log" (func $log (param i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 1)
  (func (export "_start")
    ;; Grow past 2 GiB so that valid pointers have the i32 sign bit set.
    (drop (memory.grow (i32.const 32768)))
    (i32.store8 (i32.const 0x80000000) (i32.const 0x41))
    (call $proc_exit (i32.add (i32.const 10)
      (call $log (i32.const 1) (i32.const 0x80000000) (i32.const 1))))))
"""


def test_host_imports_read_pointers_above_2_gib(run: Run) -> None:
    outcome = run(wat(HIGH_POINTER_LOG), memory_limit_bytes=3 << 30)

    assert outcome.exit_code == 10, outcome.message  # log returned 0, not -1
    assert outcome.logs == [(LogLevel.INFO, "A")]


TRAP_AFTER_HOST_CALL = r"""
(module
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "_start")
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 0) (i32.const 8)))
    unreachable))
"""


def test_trapping_runs_free_their_store_at_once(run: Run) -> None:
    """A trap used to keep its store alive in a reference cycle until the garbage
    collector ran; past the pool's slots every invocation then failed."""
    wasm = wat(TRAP_AFTER_HOST_CALL)
    gc.disable()
    try:
        outcomes = [run(wasm) for _ in range(3 * POOL_SLOTS)]
    finally:
        gc.enable()
    assert {o.kind for o in outcomes} == {OutcomeKind.TRAP}
    assert {o.message for o in outcomes} == {"trap: unreachable"}
