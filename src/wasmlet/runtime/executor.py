"""Runs one invocation in this process: a fresh store and instance every time.

The executor is what every worker process runs. It owns the engine, the linker with
WASI and the host functions, a small cache of pre-linked modules and the deadline
thread. `run` never raises for anything the guest does; it classifies the result.
"""

from __future__ import annotations

import os
import resource
import signal
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import wasmtime

from wasmlet.runtime.capture import MemfdCapture
from wasmlet.runtime.deadline import DeadlineTimer, Interruption
from wasmlet.runtime.engine import describe_error, make_engine
from wasmlet.runtime.exits import GuestExit, define_proc_exit
from wasmlet.runtime.host import (
    DeadlineReached,
    HostCaller,
    HostState,
    define_host_functions,
    no_database,
)
from wasmlet.runtime.instrument import REFUSED_GROWTH_GLOBAL
from wasmlet.runtime.outcome import Job, Outcome, OutcomeKind
from wasmlet.runtime.restore import RESTORE_SUFFIX, RestoreState, apply_state, decode_state
from wasmlet.runtime.wasmtime_compat import (
    call_nullary,
    export,
    has_pending_exception,
    set_stdin_bytes,
)

WASM_PAGE = 65536
MODULE_CACHE_SIZE = 64


@dataclass(slots=True)
class _Loaded:
    pre: wasmtime.InstancePre
    min_memory_bytes: int
    state: RestoreState | None = None  # written into each instance before `_start`


class Executor:
    """Runs jobs one at a time.

    With `limit_file_size` (worker processes only) the process's RLIMIT_FSIZE caps
    the capture files, so a guest's writes past its output limit fail at once; the
    deadline thread then stops a guest that keeps writing.
    """

    def __init__(
        self, *, limit_file_size: bool = False, call_host: HostCaller = no_database
    ) -> None:
        self._call_host = call_host
        self._engine = make_engine()
        self._linker = wasmtime.Linker(self._engine)
        self._linker.define_wasi()
        define_proc_exit(self._linker)
        self._state = HostState(log_budget=0)
        define_host_functions(self._linker, lambda: self._state)
        self._modules: OrderedDict[str, _Loaded] = OrderedDict()
        self._deadline = DeadlineTimer(self._engine)
        self._stdout = MemfdCapture("wasmlet-stdout")
        self._stderr = MemfdCapture("wasmlet-stderr")
        self._limit_file_size = limit_file_size
        self._file_size_limit = -1
        if limit_file_size:
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)

    def close(self) -> None:
        self._deadline.close()
        self._modules.clear()
        self._stdout.close()
        self._stderr.close()

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _load(self, key: str, path: str) -> _Loaded:
        """The pre-linked module at `path` (a module's artifact changes once: from its
        restore artifact to the whole module, so entries are kept by path)."""
        loaded = self._modules.get(path)
        if loaded is not None:
            self._modules.move_to_end(path)
            return loaded
        if path.endswith(RESTORE_SUFFIX):
            base_key, state = decode_state(Path(path).read_bytes())
            base = self._load(base_key, str(Path(path).with_name(f"{base_key}.cwasm")))
            loaded = _Loaded(base.pre, state.pages * WASM_PAGE, state)
        else:
            module = wasmtime.Module.deserialize_file(self._engine, path)
            min_pages = max(
                (
                    e.type.limits.min
                    for e in module.exports
                    if isinstance(e.type, wasmtime.MemoryType)
                ),
                default=0,
            )
            loaded = _Loaded(self._linker.instantiate_pre(module), min_pages * WASM_PAGE)
            # The whole module replaces its restore artifact for good.
            self._modules.pop(str(Path(path).with_suffix(RESTORE_SUFFIX)), None)
        self._modules[path] = loaded
        if len(self._modules) > MODULE_CACHE_SIZE:
            self._modules.popitem(last=False)
        return loaded

    def _wasi_config(self, job: Job) -> wasmtime.WasiConfig:
        config = wasmtime.WasiConfig()
        config.argv = list(job.argv)
        config.env = list(job.env.items())
        if job.stdin:
            set_stdin_bytes(config, job.stdin)
        config.stdout_file = self._stdout.path
        config.stderr_file = self._stderr.path
        return config

    def _cap_file_size(self, limit: int) -> None:
        if self._limit_file_size and limit != self._file_size_limit:
            _, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
            self._file_size_limit = limit

    def run(self, job: Job) -> Outcome:
        started = time.perf_counter()
        loaded = self._load(job.module_key, job.module_path)
        if loaded.min_memory_bytes > job.memory_limit_bytes:
            return Outcome(
                OutcomeKind.MEMORY_LIMIT,
                message=f"initial memory of {loaded.min_memory_bytes} bytes is over the limit",
            )
        self._cap_file_size(max(job.stdout_limit, job.stderr_limit) + 1)
        store = wasmtime.Store(self._engine)
        store.set_wasi(self._wasi_config(job))
        store.set_limits(memory_size=job.memory_limit_bytes)
        store.set_epoch_deadline(1)
        self._state = state = HostState(
            log_budget=job.stderr_limit,
            invocation_id=job.invocation_id,
            function=job.argv[0] if job.argv else "",
            deadline=time.monotonic() + job.timeout_ms / 1000,
            call_host=self._call_host,
        )
        kind, message = OutcomeKind.OK, ""
        exit_code: int | None = 0
        instance: wasmtime.Instance | None = None
        stdout_fd, stdout_limit = self._stdout.fd, job.stdout_limit
        self._deadline.arm(
            time.monotonic() + job.timeout_ms / 1000,
            watch=lambda: os.fstat(stdout_fd).st_size > stdout_limit,
        )
        try:
            instance = loaded.pre.instantiate(store)
            if loaded.state is not None:
                apply_state(store, instance, loaded.state)
            start = export(store, instance, "_start")
            assert isinstance(start, wasmtime.Func)
            call_nullary(store, start)
        except GuestExit as exc:
            exit_code = exc.code
            if exit_code != 0:
                kind, message = OutcomeKind.EXIT_ERROR, str(exc)
        except DeadlineReached as exc:
            kind, exit_code, message = OutcomeKind.TIMEOUT, None, str(exc)
        except wasmtime.Trap as exc:
            kind, exit_code, message = OutcomeKind.TRAP, None, f"trap: {_trap_reason(exc, store)}"
        except wasmtime.WasmtimeError as exc:
            kind, exit_code, message = OutcomeKind.TRAP, None, describe_error(str(exc))
        finally:
            fired = self._deadline.disarm()
        stdout, stdout_over = self._stdout.read(job.stdout_limit)
        stderr, stderr_over = self._stderr.read(job.stderr_limit)
        if stdout_over or fired is Interruption.WATCH:
            kind, message = OutcomeKind.OUTPUT_LIMIT, f"stdout over {job.stdout_limit} bytes"
        elif fired is Interruption.DEADLINE:
            # Past the deadline the result is a timeout, even when the guest was
            # blocked in a host call and returned before an epoch check.
            kind, message = OutcomeKind.TIMEOUT, "deadline passed"
        elif kind is not OutcomeKind.OK and _growth_refused(instance, store):
            kind = OutcomeKind.MEMORY_LIMIT
        return Outcome(
            kind=kind,
            exit_code=exit_code,
            stdout=stdout,
            stderr=stderr,
            stderr_truncated=stderr_over or state.logs_truncated,
            status=state.status,
            headers=state.headers,
            logs=state.logs,
            message=message,
            duration_ms=(time.perf_counter() - started) * 1000,
            host_error=state.host_error,
            last_host_call_failed=state.last_host_call_failed,
            host_call=state.host_call,
        )


def _growth_refused(instance: wasmtime.Instance | None, store: wasmtime.Store) -> bool:
    if instance is None:
        return False
    flag = export(store, instance, REFUSED_GROWTH_GLOBAL)
    return isinstance(flag, wasmtime.Global) and flag.value(store) == 1


def _trap_reason(trap: wasmtime.Trap, store: wasmtime.Store) -> str:
    code = trap.trap_code
    if code is not None:
        return code.name.lower()
    if has_pending_exception(store):
        return "uncaught WebAssembly exception"
    return describe_error(trap.message)
