"""The memory snapshot on small hand-written modules: what an initialisation leaves in
memory and globals is what a fresh instance of the snapshot starts with."""

from __future__ import annotations

import pytest
import wasmtime

from wasmlet.js.snapshot import (
    SNAPSHOT_GLOBAL_PREFIX,
    SnapshotError,
    defined_globals,
    exporting_globals,
    snapshot,
)
from wasmlet.runtime.wasmbin import sections

INIT_MODULE = """
(module
  (import "env" "unused" (global i32))
  (memory (export "memory") 1 4)
  (global $counter (mut i32) (i32.const 5))
  (global $wide (mut i64) (i64.const -1))
  (global $ratio (mut f64) (f64.const 0.5))
  (global $single (mut f32) (f32.const 1.5))
  (global $fixed i32 (i32.const 77))
  (data (i32.const 16) "before")
  (func (export "init")
    (drop (memory.grow (i32.const 1)))
    (i32.store (i32.const 65536) (i32.const 0x01020304))
    (i32.store8 (i32.const 16) (i32.const 66))
    (global.set $counter (i32.const -123456))
    (global.set $wide (i64.const 0x7fffffff00000001))
    (global.set $ratio (f64.const -2.25))
    (global.set $single (f32.const 3.5)))
  (func (export "counter") (result i32) (global.get $counter))
  (func (export "wide") (result i64) (global.get $wide))
  (func (export "ratio") (result f64) (global.get $ratio))
  (func (export "single") (result f32) (global.get $single))
  (func (export "fixed") (result i32) (global.get $fixed)))
"""


def _wasm(text: str) -> bytes:
    return bytes(wasmtime.wat2wasm(text))


def _instantiate(wasm: bytes) -> tuple[wasmtime.Store, wasmtime.Instance]:
    engine = wasmtime.Engine()
    store = wasmtime.Store(engine)
    linker = wasmtime.Linker(engine)
    linker.define(store, "env", "unused", wasmtime.Global(store, wasmtime.GlobalType(
        wasmtime.ValType.i32(), False), 0))  # fmt: skip
    return store, linker.instantiate(store, wasmtime.Module(engine, wasm))


def _call(store: wasmtime.Store, instance: wasmtime.Instance, name: str) -> object:
    func = instance.exports(store)[name]
    assert isinstance(func, wasmtime.Func)
    return func(store)


def _snapshot_after_init(source: str) -> bytes:
    original = _wasm(source)
    store, instance = _instantiate(exporting_globals(original))
    _call(store, instance, "init")
    exports = instance.exports(store)
    memory = exports["memory"]
    assert isinstance(memory, wasmtime.Memory)
    values: dict[int, int | float] = {}
    for name, item in exports.items():
        if name.startswith(SNAPSHOT_GLOBAL_PREFIX) and isinstance(item, wasmtime.Global):
            value = item.value(store)
            assert isinstance(value, int | float)
            values[int(name[len(SNAPSHOT_GLOBAL_PREFIX) :])] = value
    data = bytes(memory.read(store, 0, memory.data_len(store)))
    return snapshot(original, data, values, custom=[("note", b"kept")])


def test_globals_of_every_type_and_memory_survive_the_snapshot() -> None:
    snap = _snapshot_after_init(INIT_MODULE)
    store, instance = _instantiate(snap)
    assert _call(store, instance, "counter") == -123456
    assert _call(store, instance, "wide") == 0x7FFFFFFF00000001
    assert _call(store, instance, "ratio") == -2.25
    assert _call(store, instance, "single") == 3.5
    assert _call(store, instance, "fixed") == 77
    memory = instance.exports(store)["memory"]
    assert isinstance(memory, wasmtime.Memory)
    assert memory.size(store) == 2  # the growth is part of the snapshot
    assert bytes(memory.read(store, 16, 22)) == b"Befor" + b"e"
    assert bytes(memory.read(store, 65536, 65540)) == b"\x04\x03\x02\x01"


def test_exported_globals_are_indexed_after_imported_ones() -> None:
    definitions = defined_globals(_wasm(INIT_MODULE))
    assert [(g.index, g.mutable) for g in definitions] == [
        (1, True), (2, True), (3, True), (4, True), (5, False),
    ]  # fmt: skip


def test_zero_pages_are_not_written_as_data() -> None:
    snap = _snapshot_after_init(INIT_MODULE)
    (data,) = [s for s in sections(snap) if s.id == 11]
    # two short runs (the string at 16 and the word at 64 KiB), not 128 KiB of zeros
    assert data.end - data.start < 64


def test_custom_sections_are_appended() -> None:
    snap = _snapshot_after_init(INIT_MODULE)
    last = list(sections(snap))[-1]
    assert last.id == 0
    assert snap[last.start : last.end] == b"\x04notekept"


@pytest.mark.parametrize(
    ("source", "words"),
    [
        ("(module (memory 1) (func $s) (start $s))", "start function"),
        ('(module (memory 1) (data "passive"))', "passive"),
        ('(module (import "env" "m" (memory 1)))', "imports its memory"),
        ("(module)", "exactly one memory"),
    ],
    ids=["start", "passive-data", "imported-memory", "no-memory"],
)
def test_unsupported_shapes_are_refused(source: str, words: str) -> None:
    with pytest.raises(SnapshotError, match=words):
        exporting_globals(_wasm(source))


def test_a_memory_that_is_not_whole_pages_is_refused() -> None:
    with pytest.raises(SnapshotError, match="whole number of pages"):
        snapshot(_wasm("(module (memory 1))"), b"\0" * 100, {})


def test_a_module_without_data_gets_a_data_section() -> None:
    original = _wasm(
        '(module (memory (export "memory") 1) (func (export "read") (result i32)'
        " (i32.load (i32.const 8))))"
    )
    memory = bytearray(65536)
    memory[8:12] = (41).to_bytes(4, "little")
    store, instance = _instantiate(snapshot(original, bytes(memory), {}))
    assert _call(store, instance, "read") == 41
