"""Deploy-time compilation of modules, in short-lived child processes under limits.

A deployed module is validated, checked against guest ABI v1 and the platform's
reserved names, instrumented (`instrument.py`) and compiled, all in a
`compile_child` process with a data-segment limit, a CPU-time limit and a wall-clock
limit. A module past a limit is refused (`InvalidWasm`); the server's own memory does
not grow with the module. At most `concurrency` children compile at once and at most
`queue` deploys wait for one; past that a deploy gets `TooManyRequests`.

The compiled artifact is cached on disk under the engine fingerprint and the content
hash of the deployed bytes, so a restart, a redeploy of the same bytes and every
worker load it instead of compiling again.

A child pays ~0.3 s to import wasmtime and build its engine. With `keep_spare` (the
server) one spare child is kept started, limits set and blocked reading its request,
for the next compile; `close` ends it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

from wasmlet.errors import FunctionError, InternalError, InvalidWasm, TooManyRequests
from wasmlet.runtime.child_env import child_environment
from wasmlet.runtime.engine import engine_fingerprint

WASM_MAGIC = b"\0asm"
MEMORY_EXIT = 3  # how a compile child ends on a MemoryError
_STDERR_KEPT = 4096


@dataclass(frozen=True, slots=True)
class CompileLimits:
    timeout_s: float = 30.0
    memory_mb: int = 512
    concurrency: int = 1
    queue: int = 8


@dataclass(frozen=True, slots=True)
class CompiledModule:
    key: str
    path: Path


def content_key(wasm: bytes) -> str:
    return hashlib.sha256(wasm).hexdigest()


class ModuleCompiler:
    """Owns the on-disk cache of compiled modules and the compile processes.

    Thread-safe: deploys call `compile` from a thread pool.
    """

    def __init__(
        self, cache_root: Path, limits: CompileLimits | None = None, *, keep_spare: bool = False
    ) -> None:
        self._dir = cache_root / engine_fingerprint()
        self._dir.mkdir(parents=True, exist_ok=True)
        self._limits = limits or CompileLimits()
        self._slots = threading.BoundedSemaphore(self._limits.concurrency)
        self._lock = threading.Lock()
        self._waiting = 0
        self._keep_spare = keep_spare
        self._spare: subprocess.Popen[bytes] | None = None
        self._closed = False

    def close(self) -> None:
        with self._lock:
            self._closed = True
            spare, self._spare = self._spare, None
        if spare is not None:
            _kill(spare)

    def __enter__(self) -> ModuleCompiler:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def path_for(self, key: str) -> Path:
        return self._dir / f"{key}.cwasm"

    def is_cached(self, key: str) -> bool:
        return self.path_for(key).is_file()

    def compile(self, wasm: bytes) -> CompiledModule:
        """Validate and compile `wasm`, or find it in the cache; InvalidWasm if refused."""
        key = content_key(wasm)
        path = self.path_for(key)
        if path.is_file():
            return CompiledModule(key, path)
        if not wasm.startswith(WASM_MAGIC):
            raise InvalidWasm("Invalid WASM binary: missing the \\0asm header")
        with self._lock:
            if self._waiting >= self._limits.concurrency + self._limits.queue:
                raise TooManyRequests("Too many deploys compiling at once; retry shortly")
            self._waiting += 1
        try:
            with self._slots:
                self._run_child(wasm, path)
        finally:
            with self._lock:
                self._waiting -= 1
        return CompiledModule(key, path)

    def _run_child(self, wasm: bytes, path: Path) -> None:
        limits = self._limits
        process = self._take_child()
        request = json.dumps({"output": str(path)}).encode() + b"\n" + wasm
        try:
            stdout, stderr = process.communicate(request, timeout=limits.timeout_s)
        except subprocess.TimeoutExpired:
            _kill(process)
            raise InvalidWasm(
                f"Invalid WASM binary: compiling it took longer than the limit of "
                f"{limits.timeout_s:g}s"
            ) from None
        except BaseException:
            _kill(process)
            raise
        code = process.returncode
        if code == 0:
            result = _result(stdout)
            if result.get("ok") is True and path.is_file():
                return
            raise InvalidWasm(str(result.get("message") or "Invalid WASM binary"))
        raise _failure(code, stderr, limits)

    def _take_child(self) -> subprocess.Popen[bytes]:
        """The spare child if it is still alive, else a new one; a new spare is started."""
        with self._lock:
            if self._closed:
                raise InternalError("The module compiler is closed")
            child, self._spare = self._spare, None
            if child is not None and child.poll() is not None:
                child = None
            if self._keep_spare:
                self._spare = self._start_child()
        return child if child is not None else self._start_child()

    def _start_child(self) -> subprocess.Popen[bytes]:
        limits = self._limits
        return subprocess.Popen(
            [
                sys.executable, "-m", "wasmlet.runtime.compile_child",
                str(limits.memory_mb), str(_cpu_seconds(limits)),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=child_environment(),
            start_new_session=True,  # its own process group: killed as one
        )  # fmt: skip


def _failure(code: int, stderr: bytes, limits: CompileLimits) -> FunctionError:
    """Why a compile child ended without a result: a limit it hit, else a crash."""
    tail = stderr[-_STDERR_KEPT:].decode("utf-8", "replace")
    if code == MEMORY_EXIT or (code == -signal.SIGABRT and "memory allocation" in tail):
        return InvalidWasm(
            f"Invalid WASM binary: compiling it needs more than the limit of "
            f"{limits.memory_mb} MB of memory"
        )
    if code == -signal.SIGXCPU:
        return InvalidWasm(
            f"Invalid WASM binary: compiling it needs more than the limit of "
            f"{_cpu_seconds(limits)}s of CPU time"
        )
    if code < 0:
        return InvalidWasm(f"Invalid WASM binary: the compiler stopped on it (signal {-code})")
    return InternalError(f"Module compiler failed (exit code {code}): {tail.strip()[-500:]}")


def _result(stdout: bytes) -> dict[str, object]:
    """The child's one JSON line; anything else is the platform's failure, not the module's."""
    try:
        result = json.loads(stdout.decode("utf-8").strip().splitlines()[-1])
    except (UnicodeDecodeError, json.JSONDecodeError, IndexError) as exc:
        raise InternalError("Module compiler gave no result") from exc
    if not isinstance(result, dict):
        raise InternalError("Module compiler gave no result")
    return result


def _cpu_seconds(limits: CompileLimits) -> int:
    """CPU time can only reach wall-clock time in a single-threaded compile: a backstop
    for a child the server can no longer watch."""
    return max(1, int(limits.timeout_s) + 1)


def _kill(process: subprocess.Popen[bytes]) -> None:
    """End `process` and its process group."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
    process.communicate()
