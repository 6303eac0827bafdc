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
import tempfile
import threading
import time
import weakref
from dataclasses import dataclass
from pathlib import Path

import wasmtime

from wasmlet.errors import FunctionError, InternalError, InvalidWasm, TooManyRequests
from wasmlet.runtime.child_env import child_environment
from wasmlet.runtime.engine import describe_error, engine_fingerprint, make_validating_engine
from wasmlet.runtime.instrument import check_reserved_exports
from wasmlet.runtime.restore import RESTORE_SUFFIX, encode_state, is_marked, split
from wasmlet.runtime.wasmbin import WasmBinaryError

WASM_MAGIC = b"\0asm"
MEMORY_EXIT = 3  # how a compile child ends on a MemoryError
BACKGROUND_NICE = 10
# A background compile starts once deploys have paused this long (a dev loop's saves).
BACKGROUND_SETTLE_S = 1.0
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
        self,
        cache_root: Path,
        limits: CompileLimits | None = None,
        *,
        keep_spare: bool = False,
        restore: bool = True,
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
        self._restore = restore
        self._full: set[str] = set()
        self._validator: wasmtime.Engine | None = None
        self._running: set[subprocess.Popen[bytes]] = set()  # background compiles
        self._background = _Background(self) if restore else None

    def close(self) -> None:
        with self._lock:
            self._closed = True
            spare, self._spare = self._spare, None
            running = list(self._running)
        if spare is not None:
            _kill(spare)
        for process in running:  # its thread is waiting on it, and reaps it
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
        if self._background is not None:
            self._background.close()

    def __enter__(self) -> ModuleCompiler:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def path_for(self, key: str) -> Path:
        """The artifact to run for `key`: the whole module compiled, else its restore
        artifact while the whole module compiles in the background (`restore.py`)."""
        full = self._full_path(key)
        if key in self._full:
            return full
        if full.is_file():
            self._full.add(key)  # artifacts are never removed while the server runs
            return full
        restore = self._restore_path(key)
        return restore if restore.is_file() else full

    def _full_path(self, key: str) -> Path:
        return self._dir / f"{key}.cwasm"

    def _restore_path(self, key: str) -> Path:
        return self._dir / f"{key}{RESTORE_SUFFIX}"

    def is_cached(self, key: str) -> bool:
        return self.path_for(key).is_file()

    def is_restored(self, key: str) -> bool:
        """Whether `key` runs from its restore artifact (not yet compiled whole)."""
        return self.path_for(key).suffix == RESTORE_SUFFIX

    def compile(self, wasm: bytes) -> CompiledModule:
        """Validate and compile `wasm`, or find it in the cache; InvalidWasm if refused.

        A snapshot module (`restore.is_marked`) is split instead: its shared skeleton is
        compiled once, its state written beside it, and the whole module is compiled in
        the background; `path_for` gives the whole artifact once it is there."""
        key = content_key(wasm)
        path = self.path_for(key)
        if path.is_file():
            if path.suffix == RESTORE_SUFFIX and self._background is not None:
                self._background.add(key, wasm)
            return CompiledModule(key, path)
        if not wasm.startswith(WASM_MAGIC):
            raise InvalidWasm("Invalid WASM binary: missing the \\0asm header")
        restore = self._restore_path(key) if self._restore and is_marked(wasm) else None
        if restore is not None and self._restore_here(wasm, restore):
            if self._background is not None:
                self._background.add(key, wasm)
            return CompiledModule(key, restore)
        with self._lock:
            if self._waiting >= self._limits.concurrency + self._limits.queue:
                raise TooManyRequests("Too many deploys compiling at once; retry shortly")
            self._waiting += 1
        try:
            with self._slots:
                self._run_child(wasm, path, restore)
        finally:
            with self._lock:
                self._waiting -= 1
        if restore is not None and restore.is_file():
            if self._background is not None:
                self._background.add(key, wasm)
            return CompiledModule(key, restore)
        return CompiledModule(key, path)

    def _restore_here(self, wasm: bytes, restore: Path) -> bool:
        """Write the restore artifact of snapshot module `wasm` in this process, when its
        skeleton is compiled already: nothing is compiled, the module is only validated
        (linear work, no code generated). False when the compile child must do it."""
        try:
            parts = split(wasm)
        except WasmBinaryError:
            return False  # not split: the child validates it and compiles it whole
        base_key = content_key(parts.skeleton)
        if not self._full_path(base_key).is_file():
            return False
        with self._lock:
            if self._validator is None:
                self._validator = make_validating_engine()
            validator = self._validator
        try:
            wasmtime.Module.validate(validator, wasm)
        except wasmtime.WasmtimeError as exc:
            raise InvalidWasm(f"Invalid WASM binary: {describe_error(str(exc))}") from exc
        check_reserved_exports(wasm)
        write_atomically(restore, encode_state(base_key, parts.state))
        return True

    def compile_whole(self, key: str, wasm: bytes) -> None:
        """Compile `wasm` whole, in a new child at low priority (the background lane)."""
        path = self._full_path(key)
        if path.is_file():
            return
        process = self._start_child(nice=BACKGROUND_NICE)
        with self._lock:
            closed = self._closed
            if not closed:
                self._running.add(process)
        if closed:
            _kill(process)
            return
        try:
            self._run_child(wasm, path, None, process)
        finally:
            with self._lock:
                self._running.discard(process)

    def _run_child(
        self,
        wasm: bytes,
        path: Path,
        restore: Path | None = None,
        process: subprocess.Popen[bytes] | None = None,
    ) -> None:
        limits = self._limits
        process = process or self._take_child()
        header: dict[str, str] = {"output": str(path)}
        if restore is not None:
            header["restore_output"] = str(restore)
        request = json.dumps(header).encode() + b"\n" + wasm
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
            written = restore if result.get("restored") is True else path
            if result.get("ok") is True and written is not None and written.is_file():
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

    def _start_child(self, nice: int = 0) -> subprocess.Popen[bytes]:
        limits = self._limits
        return subprocess.Popen(
            [
                sys.executable, "-m", "wasmlet.runtime.compile_child",
                str(limits.memory_mb), str(_cpu_seconds(limits)), str(nice),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=child_environment(),
            start_new_session=True,  # its own process group: killed as one
        )  # fmt: skip


def write_atomically(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=path.suffix)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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
    if process.stdin is not None:  # left open when a communicate with input timed out
        process.stdin.close()


class _Background:
    """Compiles split snapshot modules whole, one at a time, newest first, in a thread.

    Until one is done its function runs from the restore artifact; once it is, the
    compiler's `path_for` gives the whole artifact and the next invocation uses it.
    A failure is logged and the function keeps running from its restore artifact.
    """

    def __init__(self, compiler: ModuleCompiler) -> None:
        self._compiler = weakref.ref(compiler)  # no cycle: an unclosed compiler is freed
        self._pending: dict[str, bytes] = {}
        self._changed = threading.Condition()
        self._last_added = 0.0
        self._thread: threading.Thread | None = None
        self._closed = False

    def add(self, key: str, wasm: bytes) -> None:
        with self._changed:
            if self._closed:
                return
            self._pending.pop(key, None)
            self._pending[key] = wasm  # newest last
            self._last_added = time.monotonic()
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="wasmlet-background-compile", daemon=True
                )
                self._thread.start()
            self._changed.notify_all()

    def close(self) -> None:
        with self._changed:
            self._closed = True
            self._pending.clear()
            self._changed.notify_all()

    def _next(self) -> tuple[str, bytes] | None:
        with self._changed:
            while not self._closed:
                wait = self._last_added + BACKGROUND_SETTLE_S - time.monotonic()
                if self._pending and wait <= 0:
                    return self._pending.popitem()
                self._changed.wait(wait if self._pending else None)
            return None

    def _run(self) -> None:
        # Imported here: the compile child imports this module and must start quickly.
        from wasmlet.telemetry.logs import get_logger

        log = get_logger("compiler")
        while (item := self._next()) is not None:
            key, wasm = item
            compiler = self._compiler()
            if compiler is None:
                return
            try:
                compiler.compile_whole(key, wasm)
            except FunctionError as exc:
                if not self._closed:
                    log.warning(
                        "background compile failed; the function keeps running restored",
                        module_key=key,
                        error=exc.message,
                    )
            except Exception as exc:  # the thread must outlive one failure
                log.error("background compile crashed", module_key=key, error=repr(exc))
            del compiler
