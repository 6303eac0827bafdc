"""F1, the floor: the cheapest in-process wasmtime-py path for one WASI command module.

One engine (wasmlet's own configuration, so the compiled cache loads), the module
deserialized once, a linker with WASI and an `InstancePre`. Per call: a fresh store,
stdin from memory through the C API, stdout into a memfd (an in-memory file, no thread
hop per write as with `stdout_custom` callbacks), `_start` looked up and called
through the C API (`wasmlet.runtime.wasmtime_compat`: wasmtime-py's `exports()` and
`Func.__call__` add about 35 us per call). No
deadline, no limits, no classification: whatever wasmlet's executor adds on top of
this is its overhead.
"""

from __future__ import annotations

import os

import wasmtime

from wasmlet.runtime.engine import make_engine
from wasmlet.runtime.wasmtime_compat import call_nullary, export, set_stdin_bytes


class FloorRunner:
    """Runs the module at `module_path` (a compiled `.cwasm`) in a fresh store per call."""

    def __init__(self, module_path: str, argv: tuple[str, ...] = ("hello",)) -> None:
        self._engine = make_engine()
        module = wasmtime.Module.deserialize_file(self._engine, module_path)
        linker = wasmtime.Linker(self._engine)
        linker.define_wasi()
        self._pre = linker.instantiate_pre(module)
        self._argv = list(argv)
        self._stdout_fd = os.memfd_create("floor-stdout", os.MFD_CLOEXEC)
        self._stdout_path = f"/proc/self/fd/{self._stdout_fd}"

    def run(self, stdin: bytes) -> bytes:
        config = wasmtime.WasiConfig()
        config.argv = self._argv
        if stdin:
            set_stdin_bytes(config, stdin)
        config.stdout_file = self._stdout_path
        store = wasmtime.Store(self._engine)
        store.set_wasi(config)
        # The engine has epoch interruption on; nothing ever bumps the epoch here.
        store.set_epoch_deadline(1)
        start = export(store, self._pre.instantiate(store), "_start")
        assert isinstance(start, wasmtime.Func)
        call_nullary(store, start)
        return os.pread(self._stdout_fd, 1 << 20, 0)
