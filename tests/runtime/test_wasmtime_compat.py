"""One test per private wasmtime-py touch in `wasmtime_compat`: each fails when an
upgrade moves, renames or changes the thing the platform relies on."""

from __future__ import annotations

import ctypes
import gc
import inspect
from importlib.metadata import version
from pathlib import Path

import pytest
import wasmtime
from wasmtime import _bindings as bindings
from wasmtime import _ffi as ffi
from wasmtime import _func

from tests.support.build import wat
from wasmlet.runtime import wasmtime_compat as compat
from wasmlet.runtime.engine import make_engine

PROC_EXIT_3 = """(module
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (func (export "_start") (call $exit (i32.const 3))))"""
EXPORTS = """(module
  (memory (export "memory") 1)
  (global (export "g") (mut i32) (i32.const 7))
  (func (export "_start"))
  (func (export "boom") unreachable))"""
THROWS = """(module (tag $t) (func (export "_start") throw $t))"""
CALLS_HOST = """(module
  (import "host" "fail" (func $fail))
  (func (export "_start") (call $fail)))"""


@pytest.fixture(scope="module")
def engine() -> wasmtime.Engine:
    return make_engine()


def instance_of(engine: wasmtime.Engine, text: str) -> tuple[wasmtime.Store, wasmtime.Instance]:
    store = wasmtime.Store(engine)
    store.set_epoch_deadline(1)
    return store, wasmtime.Instance(store, wasmtime.Module(engine, wat(text)), [])


def test_the_checked_version_is_the_installed_major() -> None:
    # Moving to another wasmtime-py major means reading this module's touches again.
    assert version("wasmtime").split(".")[0] == compat.CHECKED_WITH.split(".")[0]


def test_ffi_has_every_c_function_with_the_signature_used() -> None:
    expected_args = {
        "wasmtime_instance_export_get": 5,
        "wasmtime_func_call": 7,
        "wasm_byte_vec_new": 3,
        "wasi_config_set_stdin_bytes": 2,
        "wasmtime_context_has_exception": 1,
        "wasmtime_pooling_allocation_config_new": 0,
        "wasmtime_pooling_allocation_config_total_memories_set": 2,
        "wasmtime_pooling_allocation_config_total_tables_set": 2,
        "wasmtime_pooling_allocation_config_total_core_instances_set": 2,
        "wasmtime_pooling_allocation_config_total_stacks_set": 2,
        "wasmtime_pooling_allocation_config_max_memory_size_set": 2,
        "wasmtime_pooling_allocation_config_table_elements_set": 2,
        "wasmtime_pooling_allocation_strategy_set": 2,
        "wasmtime_pooling_allocation_config_delete": 1,
    }
    for name, count in expected_args.items():
        function = getattr(ffi, name)
        assert len(inspect.signature(function).parameters) == count, name
        assert len(getattr(bindings, f"_{name}").argtypes or ()) == count, name
    call = bindings._wasmtime_func_call.argtypes
    assert call[0] is ctypes.POINTER(ffi.wasmtime_context_t)
    assert call[1] is ctypes.POINTER(ffi.wasmtime_func_t)
    assert call[6] is ctypes.POINTER(ctypes.POINTER(ffi.wasm_trap_t))
    lookup = bindings._wasmtime_instance_export_get.argtypes
    assert lookup[1] is ctypes.POINTER(ffi.wasmtime_instance_t)
    assert lookup[4] is ctypes.POINTER(ffi.wasmtime_extern_t)
    for struct in ("wasmtime_extern_t", "wasm_trap_t", "wasm_byte_vec_t", "wasmtime_context_t"):
        assert isinstance(getattr(ffi, struct), type), struct


def test_store_context_is_the_c_context_pointer(engine: wasmtime.Engine) -> None:
    store = wasmtime.Store(engine)
    context = store._context()
    assert isinstance(context, ctypes.POINTER(ffi.wasmtime_context_t)) and context


def test_instance_and_func_hold_their_c_structs(engine: wasmtime.Engine) -> None:
    store, instance = instance_of(engine, EXPORTS)
    assert isinstance(instance._instance, ffi.wasmtime_instance_t)
    start = instance.exports(store)["_start"]
    assert isinstance(start, wasmtime.Func) and isinstance(start._func, ffi.wasmtime_func_t)


def test_export_wraps_each_kind_as_instance_exports_does(engine: wasmtime.Engine) -> None:
    store, instance = instance_of(engine, EXPORTS)
    start = compat.export(store, instance, "_start")
    assert isinstance(start, wasmtime.Func)
    memory = compat.export(store, instance, "memory")
    assert isinstance(memory, wasmtime.Memory) and memory.size(store) == 1
    flag = compat.export(store, instance, "g")
    assert isinstance(flag, wasmtime.Global) and flag.value(store) == 7
    assert compat.export(store, instance, "missing") is None
    compat.call_nullary(store, start)  # a plain call returns


def test_a_trap_is_raised_as_a_trap_with_its_code(engine: wasmtime.Engine) -> None:
    store, instance = instance_of(engine, EXPORTS)
    boom = compat.export(store, instance, "boom")
    assert isinstance(boom, wasmtime.Func)
    with pytest.raises(wasmtime.Trap) as raised:
        compat.call_nullary(store, boom)
    assert raised.value.trap_code is wasmtime.TrapCode.UNREACHABLE


def test_proc_exit_is_raised_as_an_exit_trap_with_its_code(engine: wasmtime.Engine) -> None:
    linker = wasmtime.Linker(engine)
    linker.define_wasi()
    store = wasmtime.Store(engine)
    store.set_epoch_deadline(1)
    store.set_wasi(wasmtime.WasiConfig())
    instance = linker.instantiate(store, wasmtime.Module(engine, wat(PROC_EXIT_3)))
    start = compat.export(store, instance, "_start")
    assert isinstance(start, wasmtime.Func)
    with pytest.raises(wasmtime.ExitTrap) as raised:
        compat.call_nullary(store, start)
    assert raised.value.code == 3


def test_a_host_function_exception_comes_out_as_itself(engine: wasmtime.Engine) -> None:
    failure = ValueError("from the host")

    def fail() -> None:
        raise failure

    store = wasmtime.Store(engine)
    store.set_epoch_deadline(1)
    host = wasmtime.Func(store, wasmtime.FuncType([], []), fail)
    module = wasmtime.Module(engine, wat(CALLS_HOST))
    instance = wasmtime.Instance(store, module, [host])
    start = compat.export(store, instance, "_start")
    assert isinstance(start, wasmtime.Func)
    with pytest.raises(ValueError) as raised:
        compat.call_nullary(store, start)
    assert raised.value is failure
    assert _func.LAST_EXCEPTION is None  # taken, so the next trap is not blamed on it


def test_an_uncaught_wasm_exception_is_seen_on_the_store(engine: wasmtime.Engine) -> None:
    store, instance = instance_of(engine, THROWS)
    assert not compat.has_pending_exception(store)
    start = compat.export(store, instance, "_start")
    assert isinstance(start, wasmtime.Func)
    with pytest.raises(wasmtime.Trap) as raised:
        compat.call_nullary(store, start)
    assert raised.value.trap_code is None
    assert compat.has_pending_exception(store)
    trapped, plain = instance_of(engine, EXPORTS)
    boom = compat.export(trapped, plain, "boom")
    assert isinstance(boom, wasmtime.Func)
    with pytest.raises(wasmtime.Trap):
        compat.call_nullary(trapped, boom)
    assert not compat.has_pending_exception(trapped)


def test_stdin_bytes_reach_a_wasi_guest(engine: wasmtime.Engine, tmp_path: Path) -> None:
    linker = wasmtime.Linker(engine)
    linker.define_wasi()
    config = wasmtime.WasiConfig()
    compat.set_stdin_bytes(config, b"from memory \x00\xff")
    out = tmp_path / "stdout"
    config.stdout_file = str(out)
    store = wasmtime.Store(engine)
    store.set_epoch_deadline(1)
    store.set_wasi(config)
    instance = linker.instantiate(store, wasmtime.Module(engine, wat("echo")))
    start = compat.export(store, instance, "_start")
    assert isinstance(start, wasmtime.Func)
    compat.call_nullary(store, start)
    assert out.read_bytes() == b"from memory \x00\xff"


def test_the_pooling_allocator_limits_live_instances_to_its_slots() -> None:
    config = wasmtime.Config()
    compat.use_pooling_allocator(config, slots=2, max_memory_bytes=1 << 20, max_table_elements=1000)
    engine = wasmtime.Engine(config)
    module = wasmtime.Module(engine, wat('(module (memory (export "memory") 1))'))
    live = []
    for _ in range(2):
        store = wasmtime.Store(engine)
        live.append((store, wasmtime.Instance(store, module, [])))
    third = wasmtime.Store(engine)
    with pytest.raises(wasmtime.WasmtimeError, match="concurrent limit of 2"):
        wasmtime.Instance(third, module, [])
    with pytest.raises(wasmtime.WasmtimeError, match="pooling"):
        wasmtime.Module(engine, wat("(module (memory 17))"))  # 17 pages > the 1 MiB slot
    live.clear()
    gc.collect()
