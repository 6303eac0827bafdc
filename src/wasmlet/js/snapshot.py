"""Pre-initialisation of a WebAssembly module: a memory snapshot, as Wizer makes.

`exporting_globals(module)` adds an export for every global the module defines, so
the host can read them after an initialisation function has run.
`snapshot(module, memory, globals)` then writes the module as it stands after that
run: its data segments become the non-zero parts of the memory, its memory's minimum
the memory's size, and its mutable globals' initial values the values read. Code,
tables and everything else are left as they are, so an instance of the result starts
exactly where the initialisation left off.

Only what the engine produced by `engine.py` needs is supported, and anything else is
refused with `SnapshotError` rather than guessed at: one memory, defined (not
imported), 32-bit; active data segments only (no `memory.init`); no start function.
The binary format is read section by section (see the WebAssembly core specification,
"Binary Format"); only the global, export, memory and data sections are decoded.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass

from wasmlet.runtime.wasmbin import (
    CODE,
    CUSTOM,
    DATA,
    DATACOUNT,
    END,
    EXPORT,
    F32,
    F64,
    GLOBAL,
    I32,
    I64,
    IMPORT,
    IMPORT_GLOBAL,
    IMPORT_MEMORY,
    MAGIC,
    MEMORY,
    START,
    Reader,
    Section,
    WasmBinaryError,
    custom_section,
    encode_name,
    encode_section,
    encode_sleb,
    encode_uleb,
    imports,
    sections,
)

PAGE = 65536
SNAPSHOT_GLOBAL_PREFIX = "__wasmlet_snapshot_global_"
# Zero runs shorter than this stay inside a data segment: a segment costs ~8 bytes.
_ZERO_GAP = 32
_CHUNK = 4096

_AFTEREXPORTS = frozenset({START, 9, CODE, DATA, DATACOUNT})  # 9: the element section


class SnapshotError(WasmBinaryError):
    """The module has a shape the snapshot does not support."""


@dataclass(frozen=True, slots=True)
class GlobalDef:
    index: int  # in the global index space (imports first)
    valtype: int
    mutable: bool


def _imported_globals(module: bytes, section: Section) -> int:
    """How many globals the module imports; refuses an imported memory."""
    count = 0
    for entry in imports(module, section):
        if entry.kind == IMPORT_MEMORY:
            raise SnapshotError("the module imports its memory")
        count += entry.kind == IMPORT_GLOBAL
    return count


def defined_globals(module: bytes) -> list[GlobalDef]:
    """The globals the module defines, with their index in the global index space."""
    imported = 0
    found: list[GlobalDef] = []
    for section in sections(module):
        if section.id == IMPORT:
            imported = _imported_globals(module, section)
        elif section.id == GLOBAL:
            reader = Reader(module, section.start, section.end)
            for offset in range(reader.uleb()):
                valtype = reader.byte()
                mutable = reader.byte() == 1
                reader.skip_const_expr()
                found.append(GlobalDef(imported + offset, valtype, mutable))
    return found


def _check_supported(module: bytes) -> None:
    memories = 0
    for section in sections(module):
        if section.id == IMPORT:
            _imported_globals(module, section)  # refuses an imported memory
        if section.id == START:
            raise SnapshotError("the module has a start function")
        if section.id == MEMORY:
            reader = Reader(module, section.start, section.end)
            memories = reader.uleb()
            if memories == 1 and reader.limits()[0] & 0x04:
                raise SnapshotError("64-bit memories are not supported")
        if section.id == DATA:
            reader = Reader(module, section.start, section.end)
            for _ in range(reader.uleb()):
                flags = reader.uleb()
                if flags != 0:
                    raise SnapshotError("the module has passive or indexed data segments")
                reader.skip_const_expr()
                reader.take(reader.uleb())
    if memories != 1:
        raise SnapshotError("the module must define exactly one memory")


# ---- rewriting -----------------------------------------------------------------------


def exporting_globals(module: bytes) -> bytes:
    """`module` with every defined global also exported as `__wasmlet_snapshot_global_N`."""
    _check_supported(module)
    extra = [
        encode_name(f"{SNAPSHOT_GLOBAL_PREFIX}{g.index}") + b"\x03" + encode_uleb(g.index)
        for g in defined_globals(module)
    ]
    out = bytearray(module[: len(MAGIC)])
    added = False
    for section in sections(module):
        if section.id == EXPORT:
            reader = Reader(module, section.start, section.end)
            count = reader.uleb()
            rest = module[reader.pos : section.end]
            out += encode_section(EXPORT, encode_uleb(count + len(extra)) + rest + b"".join(extra))
            added = True
        else:
            if not added and section.id in _AFTEREXPORTS:
                out += encode_section(EXPORT, encode_uleb(len(extra)) + b"".join(extra))
                added = True
            out += module[section.header : section.end]
    if not added:
        out += encode_section(EXPORT, encode_uleb(len(extra)) + b"".join(extra))
    return bytes(out)


def _const_expr(valtype: int, value: int | float) -> bytes:
    if valtype == I32:
        return b"\x41" + encode_sleb(_signed(int(value), 32)) + bytes([END])
    if valtype == I64:
        return b"\x42" + encode_sleb(_signed(int(value), 64)) + bytes([END])
    if valtype == F32:
        return b"\x43" + struct.pack("<f", float(value)) + bytes([END])
    if valtype == F64:
        return b"\x44" + struct.pack("<d", float(value)) + bytes([END])
    raise SnapshotError(f"cannot snapshot a mutable global of type 0x{valtype:02x}")


def _signed(value: int, bits: int) -> int:
    value &= (1 << bits) - 1
    return value - (1 << bits) if value >> (bits - 1) else value


def _data_segments(memory: bytes) -> list[tuple[int, bytes]]:
    """(offset, bytes) runs covering every non-zero byte of `memory`."""
    runs: list[tuple[int, bytes]] = []
    zero = bytes(_CHUNK)
    start: int | None = None
    for offset in range(0, len(memory), _CHUNK):
        chunk = memory[offset : offset + _CHUNK]
        if chunk == zero[: len(chunk)]:
            if start is not None:
                runs.extend(_split_run(memory, start, offset))
                start = None
        elif start is None:
            start = offset
    if start is not None:
        runs.extend(_split_run(memory, start, len(memory)))
    return runs


def _split_run(memory: bytes, start: int, end: int) -> Iterator[tuple[int, bytes]]:
    """Non-zero runs of memory[start:end], split at zero gaps of _ZERO_GAP bytes or more."""
    block = memory[start:end]
    pos = 0
    length = len(block)
    gap = bytes(_ZERO_GAP)
    while pos < length:
        while pos < length and block[pos] == 0:
            pos += 1
        if pos >= length:
            return
        run_end = block.find(gap, pos)
        if run_end < 0:
            run_end = length
        last = run_end
        while last > pos and block[last - 1] == 0:
            last -= 1
        yield start + pos, bytes(block[pos:last])
        pos = run_end


def snapshot(
    module: bytes,
    memory: bytes,
    globals: dict[int, int | float],
    custom: list[tuple[str, bytes]] | None = None,
) -> bytes:
    """`module` as it stands with `memory` and the mutable `globals` (by index) given.

    `custom` custom sections are appended.
    """
    _check_supported(module)
    if len(memory) % PAGE:
        raise SnapshotError("the memory is not a whole number of pages")
    pages = len(memory) // PAGE
    segments = _data_segments(memory)
    data_payload = bytearray(encode_uleb(len(segments)))
    for offset, chunk in segments:
        data_payload += b"\x00" + _const_expr(I32, offset) + encode_uleb(len(chunk)) + chunk
    definitions = defined_globals(module)
    out = bytearray(module[: len(MAGIC)])
    has_data = any(section.id == DATA for section in sections(module))
    for section in sections(module):
        if not has_data and segments and section.id == CUSTOM and _past_code(out):
            out += encode_section(DATA, bytes(data_payload))
            has_data = True
        if section.id == MEMORY:
            reader = Reader(module, section.start, section.end)
            reader.uleb()
            flags, minimum, maximum = reader.limits()
            if pages < minimum or (maximum is not None and pages > maximum):
                raise SnapshotError("the memory's size is outside its limits")
            limits = bytes([flags]) + encode_uleb(pages)
            if maximum is not None:
                limits += encode_uleb(maximum)
            out += encode_section(MEMORY, encode_uleb(1) + limits)
        elif section.id == GLOBAL:
            payload = _rewrite_globals(module, section.start, section.end, definitions, globals)
            out += encode_section(GLOBAL, payload)
        elif section.id == DATACOUNT:
            out += encode_section(DATACOUNT, encode_uleb(len(segments)))
        elif section.id == DATA:
            out += encode_section(DATA, bytes(data_payload))
        else:
            out += module[section.header : section.end]
    if not has_data and segments:
        out += encode_section(DATA, bytes(data_payload))
    for name, payload in custom or []:
        out += custom_section(name, payload)
    return bytes(out)


def _past_code(written: bytearray) -> bool:
    """Whether the sections written so far include every one that precedes data."""
    last = 0
    for section in sections(bytes(written)):
        if section.id != CUSTOM:
            last = section.id
    return last == CODE  # data comes right after the code section


def _rewrite_globals(
    module: bytes,
    start: int,
    end: int,
    definitions: list[GlobalDef],
    values: dict[int, int | float],
) -> bytes:
    reader = Reader(module, start, end)
    count = reader.uleb()
    payload = bytearray(encode_uleb(count))
    for definition in definitions:
        valtype = reader.byte()
        mutable = reader.byte()
        expr_start = reader.pos
        reader.skip_const_expr()
        payload += bytes([valtype, mutable])
        if definition.mutable:
            if definition.index not in values:
                raise SnapshotError(f"no value for mutable global {definition.index}")
            payload += _const_expr(valtype, values[definition.index])
        else:
            payload += module[expr_start : reader.pos]
    return bytes(payload)
