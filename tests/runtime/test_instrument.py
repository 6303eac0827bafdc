"""The deploy-time memory-growth rewrite, on the binary: what it changes, what it keeps
byte for byte, every instruction family the engine accepts, and hostile input."""

from __future__ import annotations

import random
import time

import pytest
import wasmtime

from tests.support.build import wat
from wasmlet.errors import InvalidWasm
from wasmlet.runtime.engine import make_engine
from wasmlet.runtime.instrument import REFUSED_GROWTH_GLOBAL, instrument_memory_growth
from wasmlet.runtime.wasmbin import (
    CODE,
    CUSTOM,
    MAGIC,
    Reader,
    custom_section,
    encode_name,
    encode_section,
    encode_uleb,
    sections,
)
from wasmlet.runtime.wasmcode import memory_grow_sites

GROWS = """(module
  (memory (export "memory") 1 4)
  (func (export "grow") (param i32) (result i32) (memory.grow (local.get 0)))
  (func (export "_start")))"""

# Every instruction family make_engine() validates, around one memory.grow on memory 0.
EVERYTHING = """(module
  (type $s (struct (field (mut i32)) (field i64)))
  (type $a (array (mut i8)))
  (rec (type $r1 (sub (func))) (type $r2 (sub final $r1 (func))))
  (type $f (func (param i32) (result i32)))
  (import "env" "g" (global $imported i32))
  (import "env" "f" (func $imported_f))
  (memory $m0 1 10 shared)
  (memory $m1 1)
  (memory $m64 i64 1)
  (table $t 2 funcref)
  (tag $e (param i32))
  (global $g (mut i32) (i32.add (i32.const 1) (i32.const 2)))
  (data $d "abc")
  (elem $el func $tail)
  (func $tail (param i32) (result i32) (return_call $tail (local.get 0)))
  (func $all (export "all") (param i32) (result i32) (local v128) (local (ref null $s))
    (block $out (result i32)
      (drop (memory.grow $m1 (i32.const 1)))
      (drop (memory.grow $m64 (i64.const 1)))
      (drop (i32.atomic.rmw.add $m0 offset=4 (i32.const 0) (i32.const 1)))
      (atomic.fence)
      (drop (memory.atomic.notify (i32.const 0) (i32.const 1)))
      (local.set 1 (v128.const i32x4 1 2 3 4))
      (local.set 1 (i8x16.shuffle 0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15
        (local.get 1) (local.get 1)))
      (drop (i32x4.extract_lane 3 (local.get 1)))
      (local.set 1 (v128.load8_lane $m1 offset=8 7 (i32.const 0) (local.get 1)))
      (local.set 1 (i8x16.relaxed_swizzle (local.get 1) (local.get 1)))
      (local.set 2 (struct.new $s (i32.const 1) (i64.const 2)))
      (struct.set $s 0 (local.get 2) (i32.const 5))
      (drop (array.new_fixed $a 3 (i32.const 1) (i32.const 2) (i32.const 3)))
      (drop (ref.test (ref $s) (local.get 2)))
      (drop (block $c (result (ref null $s))
        (br_on_cast $c (ref null $s) (ref $s) (local.get 2))))
      (drop (ref.i31 (i32.const 1)))
      (memory.init $m1 $d (i32.const 0) (i32.const 0) (i32.const 1))
      (memory.copy $m1 $m0 (i32.const 0) (i32.const 0) (i32.const 1))
      (drop (table.grow $t (ref.null func) (i32.const 1)))
      (drop (i32.trunc_sat_f32_s (f32.const 1.5)))
      (drop (i64.add128 (i64.const 1) (i64.const 2) (i64.const 3) (i64.const 4)))
      (drop (call_indirect $t (type $f) (i32.const 0) (i32.const 0)))
      (drop (select (result i32) (i32.const 1) (i32.const 2) (local.get 0)))
      (block $caught (result i32)
        (try_table (catch $e $caught) (throw $e (i32.const 7)))
        (i32.const 0))
      (drop)
      (br_table $out $out (i32.const 42) (i32.const 0))
    )
    (drop)
    (global.set $g (global.get $imported))
    (call $imported_f)
    (i32.eqz (memory.grow (local.get 0)))
    (if (then (nop)) (else (nop)))
    (i64.extend_i32_s (i32.const 1)) (drop)
    (f64.const 2.5) (drop)
    (call $tail (i32.const 0))))"""


@pytest.fixture(scope="module")
def engine() -> wasmtime.Engine:
    return make_engine()


def grown(wasm: bytes, engine: wasmtime.Engine, limit_bytes: int) -> tuple[list[int], int]:
    """Results of grow(1) three times under a store memory limit, and the flag after."""
    store = wasmtime.Store(engine)
    store.set_epoch_deadline(1)
    store.set_limits(memory_size=limit_bytes)
    instance = wasmtime.Instance(store, wasmtime.Module(engine, wasm), [])
    grow = instance.exports(store)["grow"]
    assert isinstance(grow, wasmtime.Func)
    results = [grow(store, 1) for _ in range(3)]
    flag = instance.exports(store)[REFUSED_GROWTH_GLOBAL]
    assert isinstance(flag, wasmtime.Global)
    return results, flag.value(store)


def test_a_refused_growth_sets_the_flag_and_returns_what_it_did(
    engine: wasmtime.Engine,
) -> None:
    rewritten = instrument_memory_growth(wat(GROWS))
    assert grown(rewritten, engine, 1 << 20) == ([1, 2, 3], 0)  # within 4 pages: no flag
    assert grown(rewritten, engine, 2 << 16) == ([1, -1, -1], 1)  # past 2 pages: refused


def test_a_module_without_memory_grow_is_returned_unchanged() -> None:
    wasm = wat("hello")
    assert instrument_memory_growth(wasm) is wasm


def test_everything_else_is_kept_byte_for_byte() -> None:
    keep = custom_section("keep-me", b"\x00\xff" * 100)
    wasm = wat(GROWS) + keep
    rewritten = instrument_memory_growth(wasm)
    before = {s.id: wasm[s.header : s.end] for s in sections(wasm) if s.id not in (1, 3, 6, 7)}
    after = {s.id: rewritten[s.header : s.end] for s in sections(rewritten)}
    for section_id, raw in before.items():
        if section_id != CODE:
            assert after[section_id] == raw, section_id
    assert rewritten.endswith(keep)
    assert instrument_memory_growth(rewritten) != rewritten  # the wrapper grows too


def test_every_instruction_family_the_engine_accepts_is_stepped_over(
    engine: wasmtime.Engine,
) -> None:
    wasm = wat(EVERYTHING)
    wasmtime.Module.validate(engine, wasm)
    rewritten = instrument_memory_growth(wasm)
    wasmtime.Module.validate(engine, rewritten)  # (three memories: past the pool to compile)
    assert encode_name(REFUSED_GROWTH_GLOBAL) + b"\x03" in rewritten
    # Only the memory.grow on memory 0 is rewritten, not those on $m1 or $m64; the added
    # function (the last body) holds the one left.
    assert sum(sites_per_body(wasm)) == 1
    assert sites_per_body(rewritten)[-1] == 1 and sum(sites_per_body(rewritten)) == 1


def sites_per_body(wasm: bytes) -> list[int]:
    code = next(s for s in sections(wasm) if s.id == CODE)
    reader = Reader(wasm, code.start, code.end)
    found = []
    for _ in range(reader.uleb()):
        size = reader.uleb()
        found.append(len(memory_grow_sites(wasm, reader.pos, reader.pos + size)))
        reader.pos += size
    return found


def test_memory_1_and_64_bit_memories_are_left_alone() -> None:
    other = "(module (memory 1) (memory 1) (func (drop (memory.grow 1 (i32.const 1)))))"
    assert instrument_memory_growth(wat(other)) == wat(other)
    wide = "(module (memory i64 1) (func (drop (memory.grow (i64.const 1)))))"
    assert instrument_memory_growth(wat(wide)) == wat(wide)


def test_a_module_without_globals_or_exports_gets_them_in_order(
    engine: wasmtime.Engine,
) -> None:
    bare = wat('(module (memory 1) (func (drop (memory.grow (i32.const 1)))) (@custom "c" "x"))')
    rewritten = instrument_memory_growth(bare)
    wasmtime.Module.validate(engine, rewritten)
    ids = [s.id for s in sections(rewritten) if s.id != CUSTOM]
    assert ids == sorted(ids, key=[1, 2, 3, 4, 5, 13, 6, 7, 8, 9, 12, 10, 11].index)
    assert 6 in ids and 7 in ids


def _body_module(body: bytes) -> bytes:
    """A module of one `() -> ()` function with `body` (locals included) as its code."""
    return (
        MAGIC
        + encode_section(1, encode_uleb(1) + b"\x60\x00\x00")
        + encode_section(3, encode_uleb(1) + b"\x00")
        + encode_section(5, encode_uleb(1) + b"\x00\x01")
        + encode_section(10, encode_uleb(1) + encode_uleb(len(body)) + body)
    )


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b"\x00\x41" + b"\xff" * 11 + b"\x0b", "LEB128"),  # i32.const with an endless LEB
        (b"\x00\x20" + b"\x80" * 6 + b"\x00\x0b", "LEB128"),  # local.get, overlong index
        (b"\x00\x06\x40\x0b\x0b", "unsupported instruction 0x06"),  # legacy try
        (b"\x00\xfc\x12\x0b", "unsupported instruction 0xfc 18"),
        (b"\x00\xfd\xff\x0f\x0b", "unsupported instruction 0xfd"),
        (b"\x00\x44\x00\x00", "unexpected end"),  # f64.const cut short
    ],
)
def test_hostile_bodies_are_refused_as_invalid_wasm(body: bytes, problem: str) -> None:
    module = _body_module(body + b"\x40\x00\x1a\x0b")
    with pytest.raises(InvalidWasm, match=problem):
        instrument_memory_growth(module)


def test_a_body_size_past_its_section_is_refused() -> None:
    module = _body_module(b"\x00\x0b")
    broken = module[:-3] + b"\x7f" + module[-2:]  # body size 127, two bytes left
    with pytest.raises(InvalidWasm):
        instrument_memory_growth(broken)


def test_work_is_linear_in_the_module_size() -> None:
    def module(count: int) -> bytes:
        body = bytes([0x00, 0x41, 0x00, 0x40, 0x00, 0x1A, 0x0B])
        return (
            MAGIC
            + encode_section(1, encode_uleb(1) + b"\x60\x00\x00")
            + encode_section(3, encode_uleb(count) + b"\x00" * count)
            + encode_section(5, encode_uleb(1) + b"\x00\x01")
            + encode_section(7, encode_uleb(1) + encode_name("_start") + b"\x00\x00")
            + encode_section(10, encode_uleb(count) + (encode_uleb(len(body)) + body) * count)
        )

    def seconds(count: int) -> float:
        wasm = module(count)
        started = time.perf_counter()
        instrument_memory_growth(wasm)
        return time.perf_counter() - started

    small, large = seconds(1_000), seconds(30_000)
    assert large < small * 30 * 10  # thirty times the input: far from 900 times the work


def test_sites_are_found_by_decoding_not_by_searching_bytes() -> None:
    # local.get 64 then unreachable holds the bytes 0x40 0x00: not a memory.grow.
    body = b"\x00\x20\x40\x00\x41\x00\x40\x00\x1a\x0b"
    module = _body_module(body)
    code = next(s for s in sections(module) if s.id == CODE)
    start = code.start + 2  # the count, the size
    sites = memory_grow_sites(module, start, code.end)
    assert [module[a:b] for a, b in sites] == [b"\x40\x00"]
    assert sites[0][0] == start + 6


def test_mangled_modules_are_rewritten_or_refused_never_crash_or_hang() -> None:
    rng = random.Random(12)
    original = wat(EVERYTHING)
    started = time.monotonic()
    refused = rewritten = 0
    for _ in range(400):
        mangled = bytearray(original)
        for _ in range(rng.randint(1, 4)):
            mangled[rng.randrange(8, len(mangled))] = rng.randrange(256)
        try:
            instrument_memory_growth(bytes(mangled))
        except InvalidWasm:
            refused += 1
        else:
            rewritten += 1
    assert refused and rewritten  # both ways were taken: the mangling reached the reader
    assert time.monotonic() - started < 60  # against a hang only
