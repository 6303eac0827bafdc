"""Every use of wasmtime-py's private API, in one place.

Checked against wasmtime-py 50.0.1 (`CHECKED_WITH`). wasmtime-py makes no promise
about anything named with a leading underscore, so each touch is listed here with why
it is needed; `tests/runtime/test_wasmtime_compat.py` has one test per touch that
fails when an upgrade changes the thing under us (a moved name, a changed signature,
a changed behaviour), instead of a worker failing at its first invocation.

Touch points:

1. `wasmtime._ffi` (the ctypes bindings of the C API). Parts of the C API that
   wasmtime-py does not wrap: the pooling allocator's configuration (a fresh instance
   per invocation costs a slot reset instead of an mmap/munmap pair: 66 -> 40 us per
   hello), WASI stdin from memory (`wasi_config_set_stdin_bytes`; wasmtime-py only
   reads stdin from a file), whether a trap is an uncaught WebAssembly exception
   (`wasmtime_context_has_exception`), and the export lookup and call below.
2. `Store._context()`: the `wasmtime_context_t` pointer every C call on a store takes.
3. `Instance._instance`, `Func._func`: the C structs behind an instance and a function.
4. `wasmtime._extern.wrap_extern`: turns a looked-up `wasmtime_extern_t` into the
   `Func` / `Global` / ... object, exactly as `Instance.exports()` does.
5. `Trap._from_ptr`, `WasmtimeError._from_ptr`: the exception objects for a trap or
   an error returned by `wasmtime_func_call`; the latter gives an `ExitTrap` for
   `proc_exit`, as `Func.__call__` does.
6. `wasmtime._func.LAST_EXCEPTION`: a Python exception raised inside a host function
   is parked there while wasm unwinds with a "python exception" trap; whoever called
   into wasm must raise it instead of the trap (wasmtime-py's `enter_wasm` does).

Why 3 to 6 at all: `Instance.exports()` wraps every export of each fresh instance and
`Func.__call__` reads the function's type and builds value arrays on every call, about
35 us of a 60 us hello. `_start` takes and returns nothing, so the lookup and the call
go straight to the C API. And wasmtime-py's `enter_wasm` keeps the trap in a generator
frame that the trap's traceback references: every trap made a reference cycle holding
the whole store (and its pooled memory slot) until the garbage collector ran.
"""

from __future__ import annotations

import ctypes

import wasmtime
from wasmtime import _ffi as ffi
from wasmtime import _func
from wasmtime._extern import wrap_extern

CHECKED_WITH = "50.0.1"


def export(store: wasmtime.Store, instance: wasmtime.Instance, name: str) -> object | None:
    """One export of `instance` by name, or None."""
    encoded = name.encode()
    item = ffi.wasmtime_extern_t()
    found = ffi.wasmtime_instance_export_get(
        store._context(),
        ctypes.byref(instance._instance),
        ctypes.create_string_buffer(encoded),
        len(encoded),
        ctypes.byref(item),
    )
    return wrap_extern(item) if found else None


def call_nullary(store: wasmtime.Store, func: wasmtime.Func) -> None:
    """Call a `() -> ()` function; raises `Trap`/`ExitTrap`/`WasmtimeError` as `Func` does,
    or the exception a Python host function raised."""
    trap = ctypes.POINTER(ffi.wasm_trap_t)()
    error = ffi.wasmtime_func_call(
        store._context(), ctypes.byref(func._func), None, 0, None, 0, ctypes.byref(trap)
    )
    failure: BaseException | None = None
    if trap:
        failure = wasmtime.Trap._from_ptr(trap)
    elif error:
        failure = wasmtime.WasmtimeError._from_ptr(error)
    if failure is None:
        return
    pending = _func.LAST_EXCEPTION  # an exception raised by a Python host function
    _func.LAST_EXCEPTION = None
    try:
        raise (pending if pending is not None else failure)
    finally:
        del failure, pending


def set_stdin_bytes(config: wasmtime.WasiConfig, data: bytes) -> None:
    """In-memory stdin for a WASI config; `wasi_config_set_stdin_bytes` takes ownership
    of the byte vector."""
    vec = ffi.wasm_byte_vec_t()
    buffer = (ctypes.c_uint8 * len(data)).from_buffer_copy(data)
    ffi.wasm_byte_vec_new(ctypes.byref(vec), len(data), buffer)
    ffi.wasi_config_set_stdin_bytes(config.ptr(), ctypes.byref(vec))


def has_pending_exception(store: wasmtime.Store) -> bool:
    """Whether the store holds an uncaught WebAssembly exception (what a trap without a
    trap code may be)."""
    return bool(ffi.wasmtime_context_has_exception(store._context()))


def use_pooling_allocator(
    config: wasmtime.Config, *, slots: int, max_memory_bytes: int, max_table_elements: int
) -> None:
    """Reuse `slots` pre-reserved memories, tables, instances and stacks."""
    pooling = ffi.wasmtime_pooling_allocation_config_new()
    try:
        ffi.wasmtime_pooling_allocation_config_total_memories_set(pooling, slots)
        ffi.wasmtime_pooling_allocation_config_total_tables_set(pooling, slots)
        ffi.wasmtime_pooling_allocation_config_total_core_instances_set(pooling, slots)
        ffi.wasmtime_pooling_allocation_config_total_stacks_set(pooling, slots)
        ffi.wasmtime_pooling_allocation_config_max_memory_size_set(pooling, max_memory_bytes)
        ffi.wasmtime_pooling_allocation_config_table_elements_set(pooling, max_table_elements)
        ffi.wasmtime_pooling_allocation_strategy_set(config.ptr(), pooling)
    finally:
        ffi.wasmtime_pooling_allocation_config_delete(pooling)
