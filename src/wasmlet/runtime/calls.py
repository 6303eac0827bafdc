"""Export lookup and `_start` calls without wasmtime-py's per-call overhead.

`Instance.exports()` wraps every export on each fresh instance and `Func.__call__`
reads the function's type and builds value arrays on every call: about 35 us of a
60 us hello. `_start` takes and returns nothing, so both steps go straight to the C
API here, through the same bindings and trap handling wasmtime-py uses itself.
"""

from __future__ import annotations

import ctypes

import wasmtime
from wasmtime import _ffi as ffi
from wasmtime._extern import wrap_extern
from wasmtime._func import enter_wasm


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
    with enter_wasm(store) as trap:
        error = ffi.wasmtime_func_call(
            store._context(), ctypes.byref(func._func), None, 0, None, 0, trap
        )
        if error:
            raise wasmtime.WasmtimeError._from_ptr(error)
