"""Export lookup and `_start` calls without wasmtime-py's per-call overhead.

`Instance.exports()` wraps every export on each fresh instance and `Func.__call__`
reads the function's type and builds value arrays on every call: about 35 us of a
60 us hello. `_start` takes and returns nothing, so both steps go straight to the C
API here, through the same bindings wasmtime-py uses itself.

The trap is raised without a generator-based context manager: wasmtime-py's
`enter_wasm` keeps the trap in its own frame, which the trap's traceback references,
so every trap made a reference cycle holding the whole store (and its pooled memory
slot) until the garbage collector ran.
"""

from __future__ import annotations

import ctypes

import wasmtime
from wasmtime import _ffi as ffi
from wasmtime import _func
from wasmtime._extern import wrap_extern


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
    """Call a `() -> ()` function; raises `Trap`/`ExitTrap`/`WasmtimeError` as `Func` does."""
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
