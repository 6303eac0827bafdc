"""F1, the floor: the cheapest in-process wasmtime-py path for one WASI command module.

One engine (wasmlet's own configuration, so the compiled cache loads), the module
deserialized once, a linker with WASI and an `InstancePre`. Per call: a fresh store,
stdin from memory through the C API, stdout into a memfd (an in-memory file, no thread
hop per write as with `stdout_custom` callbacks), `_start` looked up and called
through the C API (`wasmlet.runtime.calls`: wasmtime-py's `exports()` and
`Func.__call__` add about 35 us per call). No
deadline, no limits, no classification: whatever wasmlet's executor adds on top of
this is its overhead.
"""

from __future__ import annotations

import ctypes
import os

import wasmtime
from wasmtime import _ffi as ffi

from wasmlet.runtime.calls import call_nullary, export
from wasmlet.runtime.engine import make_engine


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
            _set_stdin_bytes(config, stdin)
        config.stdout_file = self._stdout_path
        store = wasmtime.Store(self._engine)
        store.set_wasi(config)
        # The engine has epoch interruption on; nothing ever bumps the epoch here.
        store.set_epoch_deadline(1)
        start = export(store, self._pre.instantiate(store), "_start")
        assert isinstance(start, wasmtime.Func)
        call_nullary(store, start)
        return os.pread(self._stdout_fd, 1 << 20, 0)


def _set_stdin_bytes(config: wasmtime.WasiConfig, data: bytes) -> None:
    """`wasi_config_set_stdin_bytes` takes ownership of the byte vector."""
    vec = ffi.wasm_byte_vec_t()
    buffer = (ctypes.c_uint8 * len(data)).from_buffer_copy(data)
    ffi.wasm_byte_vec_new(ctypes.byref(vec), len(data), buffer)
    ffi.wasi_config_set_stdin_bytes(config.ptr(), ctypes.byref(vec))
