"""Stepping through WebAssembly function bodies, one instruction at a time.

`memory_grow_sites(module, body)` finds every `memory.grow` on memory 0 in a function
body, with where it starts and ends, by decoding each instruction's immediates (an
opcode byte can also be part of an immediate, so a byte search would be wrong). It
covers every instruction the platform's engine validates (`engine.make_engine`): the
core instructions, sign extension, saturating truncation, bulk memory, reference
types, typed function references, GC, tail calls, exceptions (`try_table`), SIMD and
relaxed SIMD, threads, multi-memory, memory64 and wide arithmetic. The legacy
exception instructions, stack switching and custom page sizes are not enabled there,
so they are not decoded here. An instruction this code does not know is a
`WasmBinaryError`, never a guess.

One pass, no backtracking: the work is linear in the body's size.
"""

from __future__ import annotations

from wasmlet.runtime.wasmbin import REF, REF_NULL, Reader, WasmBinaryError

MEMORY_GROW = 0x40

# Core opcodes by their immediates.
_NONE = frozenset(
    {0x00, 0x01, 0x05, 0x0A, 0x0B, 0x0F, 0x1A, 0x1B, 0xD1, 0xD3, 0xD4}
    | set(range(0x45, 0xC5))  # numeric instructions, sign extension
)
_ONE_INDEX = frozenset(
    {
        0x08,  # throw tag
        0x0C, 0x0D,  # br, br_if
        0x10, 0x12,  # call, return_call
        0x14, 0x15,  # call_ref, return_call_ref
        0x20, 0x21, 0x22, 0x23, 0x24,  # local.get/set/tee, global.get/set
        0x25, 0x26,  # table.get/set
        0x3F, MEMORY_GROW,  # memory.size, memory.grow (a memory index)
        0xD2,  # ref.func
        0xD5, 0xD6,  # br_on_null, br_on_non_null
    }
)  # fmt: skip
_TWO_INDEXES = frozenset({0x11, 0x13})  # call_indirect, return_call_indirect
_BLOCKS = frozenset({0x02, 0x03, 0x04})  # block, loop, if
_MEMORY_ACCESS = frozenset(range(0x28, 0x3F))  # loads and stores

# 0xFC prefix: sub-opcode -> number of index immediates.
_FC_INDEXES = {
    **dict.fromkeys(range(0, 8), 0),  # saturating truncation
    8: 2, 9: 1, 10: 2, 11: 1,  # memory.init, data.drop, memory.copy, memory.fill
    12: 2, 13: 1, 14: 2, 15: 1, 16: 1, 17: 1,  # table.init ... table.fill
    **dict.fromkeys(range(19, 23), 0),  # wide arithmetic
}  # fmt: skip

# 0xFB prefix (GC): sub-opcode -> number of index immediates; heap-type ones apart.
_FB_INDEXES = {
    0: 1, 1: 1, 2: 2, 3: 2, 4: 2, 5: 2,  # struct.*
    6: 1, 7: 1, 8: 2, 9: 2, 10: 2, 11: 1, 12: 1, 13: 1, 14: 1, 15: 0, 16: 1, 17: 2,
    18: 2, 19: 2,  # array.*
    26: 0, 27: 0, 28: 0, 29: 0, 30: 0,  # conversions, i31
}  # fmt: skip
_FB_HEAP_TYPE = frozenset({20, 21, 22, 23})  # ref.test, ref.cast
_FB_BR_ON_CAST = frozenset({24, 25})

# 0xFD prefix (SIMD).
_FD_MEMARG = frozenset({*range(0, 12), 92, 93})
_FD_MEMARG_LANE = frozenset(range(84, 92))
_FD_BYTES16 = frozenset({12, 13})  # v128.const, i8x16.shuffle
_FD_LANE = frozenset(range(21, 35))
_FD_LAST = 0x113  # the last relaxed SIMD instruction

# 0xFE prefix (threads).
_FE_MEMARG = frozenset({0x00, 0x01, 0x02, *range(0x10, 0x4F)})
_FE_FENCE = 0x03


def memory_grow_sites(module: bytes, start: int, end: int) -> list[tuple[int, int]]:
    """(start, end) of each `memory.grow` on memory 0 in the function body at
    module[start:end] (its locals included)."""
    reader = Reader(module, start, end)
    for _ in range(reader.uleb()):  # local declarations: count, type
        reader.uleb()
        reader.skip_valtype()
    sites: list[tuple[int, int]] = []
    while reader.pos < end:
        at = reader.pos
        op = module[at]
        reader.pos = at + 1
        if op in _NONE:
            continue
        if op == MEMORY_GROW:
            if reader.uleb() == 0:
                sites.append((at, reader.pos))
        elif op in _ONE_INDEX:
            reader.uleb()
        else:
            _immediates(reader, op, at)
    return sites


def _immediates(reader: Reader, op: int, at: int) -> None:
    if op in _NONE:
        return
    if op in _ONE_INDEX:
        reader.uleb()
    elif op in _MEMORY_ACCESS:
        _memarg(reader)
    elif op in _BLOCKS:
        _blocktype(reader)
    elif op in _TWO_INDEXES:
        reader.uleb()
        reader.uleb()
    elif op in (0x41, 0x42):  # i32.const, i64.const
        reader.sleb()
    elif op == 0x43:  # f32.const
        reader.take(4)
    elif op == 0x44:  # f64.const
        reader.take(8)
    elif op == 0x0E:  # br_table
        for _ in range(reader.uleb()):
            reader.uleb()
        reader.uleb()
    elif op == 0x1C:  # select with types
        for _ in range(reader.uleb()):
            reader.skip_valtype()
    elif op == 0x1F:  # try_table
        _blocktype(reader)
        for _ in range(reader.uleb()):
            kind = reader.byte()
            if kind in (0x00, 0x01):  # catch, catch_ref: tag, label
                reader.uleb()
            elif kind not in (0x02, 0x03):  # catch_all, catch_all_ref: label
                raise WasmBinaryError(f"unknown catch kind 0x{kind:02x} at offset {at}")
            reader.uleb()
    elif op == 0xD0:  # ref.null
        reader.sleb()
    elif op == 0xFB:
        _gc(reader, at)
    elif op == 0xFC:
        _misc(reader, at)
    elif op == 0xFD:
        _simd(reader, at)
    elif op == 0xFE:
        _atomic(reader, at)
    else:
        raise WasmBinaryError(f"unsupported instruction 0x{op:02x} at offset {at}")


def _gc(reader: Reader, at: int) -> None:
    sub = reader.uleb()
    count = _FB_INDEXES.get(sub)
    if count is not None:
        for _ in range(count):
            reader.uleb()
    elif sub in _FB_HEAP_TYPE:
        reader.sleb()
    elif sub in _FB_BR_ON_CAST:
        reader.byte()  # cast flags
        reader.uleb()  # label
        reader.sleb()  # from heap type
        reader.sleb()  # to heap type
    else:
        raise WasmBinaryError(f"unsupported instruction 0xfb {sub} at offset {at}")


def _misc(reader: Reader, at: int) -> None:
    sub = reader.uleb()
    count = _FC_INDEXES.get(sub)
    if count is None:
        raise WasmBinaryError(f"unsupported instruction 0xfc {sub} at offset {at}")
    for _ in range(count):
        reader.uleb()


def _simd(reader: Reader, at: int) -> None:
    sub = reader.uleb()
    if sub in _FD_MEMARG:
        _memarg(reader)
    elif sub in _FD_MEMARG_LANE:
        _memarg(reader)
        reader.byte()
    elif sub in _FD_BYTES16:
        reader.take(16)
    elif sub in _FD_LANE:
        reader.byte()
    elif sub > _FD_LAST:
        raise WasmBinaryError(f"unsupported instruction 0xfd {sub} at offset {at}")


def _atomic(reader: Reader, at: int) -> None:
    sub = reader.uleb()
    if sub in _FE_MEMARG:
        _memarg(reader)
    elif sub == _FE_FENCE:
        reader.byte()
    else:
        raise WasmBinaryError(f"unsupported instruction 0xfe {sub} at offset {at}")


def _memarg(reader: Reader) -> None:
    flags = reader.uleb()
    if flags & 0x40:  # multi-memory: a memory index follows
        reader.uleb()
    reader.uleb64()  # offset (64-bit for memory64)


def _blocktype(reader: Reader) -> None:
    """Empty (0x40), a value type, or a type index (s33)."""
    if reader.pos < reader.end and reader.data[reader.pos] in (REF, REF_NULL):
        reader.skip_valtype()
    else:
        reader.sleb()
