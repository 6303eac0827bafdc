"""A snapshot module split into the shared skeleton and its state, against real wasmtime.

An instance of the skeleton with the state applied must be the instance the whole
module gives (memory bytes and globals); the compiler serves a marked module from its
restore artifact at once and swaps in the whole module compiled in the background.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import wasmtime

from tests.support.build import wat
from wasmlet.errors import InvalidWasm
from wasmlet.runtime.compiler import ModuleCompiler
from wasmlet.runtime.executor import Executor
from wasmlet.runtime.outcome import Job, OutcomeKind
from wasmlet.runtime.restore import (
    MARKER_SECTION,
    RESTORE_SUFFIX,
    NotRestorable,
    apply_state,
    decode_state,
    encode_state,
    is_marked,
    split,
)
from wasmlet.runtime.wasmbin import (
    CODE,
    DATACOUNT,
    custom_section,
    encode_section,
    encode_uleb,
    sections,
)

MB = 1024 * 1024
SWAP_DEADLINE_S = 300  # a whole compile in the background, on a loaded machine

STATEFUL = """
(module
  (memory (export "memory") 3 10)
  (global $a (mut i32) (i32.const -7))
  (global $b (mut i64) (i64.const 1234567890123))
  (global $c i32 (i32.const 5))
  (func (export "_start"))
  (func (export "a") (result i32) global.get $a)
  (func (export "b") (result i64) global.get $b)
  (data (i32.const 0) "abcdef")
  (data (i32.const 2) "XY")
  (data (i32.const 100) "near")
  (data (i32.const 70000) "second page")
  (data (i32.const 196600) "last"))
"""

HELLO = """
(module
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (global $sp (mut i32) (i32.const 0))
  (data (i32.const 16) "%s")
  (func (export "_start")
    (i32.store (i32.const 0) (i32.const 16))
    (i32.store (i32.const 4) (i32.const %d))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))
"""


def marked(wasm: bytes) -> bytes:
    return wasm + custom_section(MARKER_SECTION, b"")


def hello(text: str) -> bytes:
    """A marked module printing `text`: the same code for every text of one length."""
    return marked(wat(HELLO % (text, len(text))))


def _instance(engine: wasmtime.Engine, wasm: bytes) -> tuple[wasmtime.Store, wasmtime.Instance]:
    store = wasmtime.Store(engine)
    return store, wasmtime.Instance(store, wasmtime.Module(engine, wasm), [])


def test_the_skeleton_with_its_state_is_the_whole_module() -> None:
    wasm = marked(wat(STATEFUL))
    engine = wasmtime.Engine()
    store, whole = _instance(engine, wasm)
    parts = split(wasm)
    base, state = decode_state(encode_state("base", parts.state))
    assert base == "base"
    restored_store, restored = _instance(engine, parts.skeleton)
    apply_state(restored_store, restored, state)

    def memory(s: wasmtime.Store, instance: wasmtime.Instance) -> bytes:
        item = instance.exports(s)["memory"]
        assert isinstance(item, wasmtime.Memory)
        return bytes(item.read(s, 0, item.data_len(s)))

    assert memory(restored_store, restored) == memory(store, whole)
    for name in ("a", "b"):
        want, got = whole.exports(store)[name], restored.exports(restored_store)[name]
        assert isinstance(want, wasmtime.Func) and isinstance(got, wasmtime.Func)
        assert got(restored_store) == want(store)
    assert memory(store, whole)[:6] == b"abXYef"  # the later segment wins


def test_snapshots_of_one_engine_share_their_skeleton() -> None:
    first, second = split(hello("one")), split(hello("two"))
    assert first.skeleton == second.skeleton
    assert first.state != second.state


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("(module (memory 1) (func $s) (start $s))", "start function"),
        ("(module (memory 1) (global (mut f64) (f64.const 1)))", "mutable global"),
        ('(module (memory 1) (data "passive"))', "passive"),
        ("(module)", "exactly one memory"),
        ('(module (import "m" "mem" (memory 1)))', "imports its memory"),
    ],
)
def test_shapes_it_does_not_cover_are_not_split(text: str, why: str) -> None:
    with pytest.raises(NotRestorable, match=why):
        split(marked(wat(text)))


def test_chunks_stay_within_twice_the_data_however_it_is_spread() -> None:
    segments = "".join(f'(data (i32.const {i * 4000}) "x")' for i in range(500))
    parts = split(marked(wat(f'(module (memory (export "memory") 40) {segments})')))
    assert sum(len(chunk) for _, chunk in parts.state.chunks) <= 2 * 500


def test_only_marked_modules_are_split() -> None:
    assert is_marked(hello("x"))
    assert not is_marked(wat(HELLO % ("x", 1)))
    assert not is_marked(b"\0asm\x01\0\0\0\x00\xff")  # unreadable: not marked


def _job(path: Path, key: str, memory_limit_bytes: int = 128 * MB) -> Job:
    return Job(
        invocation_id="restore",
        module_key=key,
        module_path=str(path),
        stdin=b"",
        env={},
        argv=("restore",),
        timeout_ms=10_000,
        memory_limit_bytes=memory_limit_bytes,
        stdout_limit=MB,
        stderr_limit=64 * 1024,
    )


def test_a_marked_module_runs_restored_then_whole(tmp_path: Path) -> None:
    with ModuleCompiler(tmp_path) as compiler, Executor() as executor:
        first = compiler.compile(hello("first"))
        assert first.path.suffix == RESTORE_SUFFIX
        second = compiler.compile(hello("other"))  # the skeleton is compiled: no child
        assert second.path.suffix == RESTORE_SUFFIX
        outcome = executor.run(_job(second.path, second.key))
        assert outcome.ok and outcome.stdout == b"other", outcome
        deadline = time.monotonic() + SWAP_DEADLINE_S
        while compiler.path_for(second.key).suffix == RESTORE_SUFFIX:
            assert time.monotonic() < deadline, "the whole module was never compiled"
            time.sleep(0.2)
        whole = compiler.path_for(second.key)
        assert whole.suffix == ".cwasm"
        outcome = executor.run(_job(whole, second.key))
        assert outcome.ok and outcome.stdout == b"other", outcome
        outcome = executor.run(_job(first.path, first.key))
        assert outcome.ok and outcome.stdout == b"first", outcome


def test_the_restored_module_keeps_the_memory_limit(tmp_path: Path) -> None:
    big = marked(wat('(module (memory (export "memory") 40) (func (export "_start")))'))
    with ModuleCompiler(tmp_path, restore=True) as compiler, Executor() as executor:
        compiled = compiler.compile(big)
        assert compiled.path.suffix == RESTORE_SUFFIX
        outcome = executor.run(_job(compiled.path, compiled.key, memory_limit_bytes=MB))
    assert outcome.kind is OutcomeKind.MEMORY_LIMIT


def test_the_fast_path_still_refuses_an_invalid_module(tmp_path: Path) -> None:
    """The split drops the data count; the module itself must still be validated."""
    with ModuleCompiler(tmp_path) as compiler:
        assert compiler.compile(hello("valid")).path.suffix == RESTORE_SUFFIX
        wasm = wat(HELLO % ("wrong", 5))
        # A data count section of 7, before the code section: one segment follows.
        at = next(section.header for section in sections(wasm) if section.id == CODE)
        broken = marked(wasm[:at] + encode_section(DATACOUNT, encode_uleb(7)) + wasm[at:])
        with pytest.raises(InvalidWasm, match="Invalid WASM binary"):
            compiler.compile(broken)


def test_a_restart_compiles_a_restored_module_whole(tmp_path: Path) -> None:
    """A server stopped before its background compile: the next one finishes the job."""
    wasm = hello("again")
    with ModuleCompiler(tmp_path) as compiler:
        key = compiler.compile(wasm).key
    with ModuleCompiler(tmp_path) as compiler:
        assert compiler.is_restored(key)  # closed at once: its background child was killed
        assert compiler.compile(wasm).path.suffix == RESTORE_SUFFIX
        deadline = time.monotonic() + SWAP_DEADLINE_S
        while compiler.is_restored(key):
            assert time.monotonic() < deadline, "the whole module was never compiled"
            time.sleep(0.2)
        assert compiler.path_for(key).suffix == ".cwasm"
