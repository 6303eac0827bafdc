"""A pre-initialised (snapshot) module split into shared code and its own state.

A snapshot module, such as a JavaScript function (`wasmlet.js.package`: the QuickJS
engine with the function's source already loaded), is the same code as every other
snapshot of the same engine; only its data segments, its memory's minimum size and
its mutable globals' initial values differ. Compiling the whole module again for
every deploy costs seconds, so `split` separates the two:

- the *skeleton*: the module without its data segments (and data count), with its
  memory's minimum at 0, its mutable globals starting at 0, each of them exported as
  `__wasmlet_snapshot_global_N`, and without custom sections other than `name`. Every
  snapshot of one engine has the same skeleton, so it is compiled once and shared (its
  artifact is cached under its own content hash, as any module's);
- the *state*: the memory's size in pages, the data (merged into a few chunks) and the
  globals' values. `encode_state` writes it next to the compiled modules; an executor
  instantiates the skeleton, grows the memory to the size, writes the chunks and sets
  the globals before `_start` runs: exactly the instance the whole module would give.

Only modules that ask for it (a custom section `wasmlet.snapshot`) are split, and only
the shapes whose equivalence is plain: one defined 32-bit memory, no start function,
active data segments at constant offsets within the memory, mutable globals of type
i32 or i64 with constant initial values. Anything else is `NotRestorable`, and the
module is compiled whole, as before.
"""

from __future__ import annotations

import ctypes
import json
from dataclasses import dataclass

import wasmtime

from wasmlet.runtime.wasmbin import (
    CUSTOM,
    DATA,
    DATACOUNT,
    END,
    EXPORT,
    GLOBAL,
    I32,
    I64,
    IMPORT,
    IMPORT_GLOBAL,
    IMPORT_MEMORY,
    MAGIC,
    MEMORY,
    MEMORY64,
    START,
    Reader,
    WasmBinaryError,
    encode_name,
    encode_section,
    encode_uleb,
    imports,
    sections,
)
from wasmlet.runtime.wasmtime_compat import export as _export

MARKER_SECTION = "wasmlet.snapshot"
RESTORE_SUFFIX = ".restore"  # a restore artifact's file name: <content key>.restore
GLOBAL_EXPORT_PREFIX = "__wasmlet_snapshot_global_"
STATE_MAGIC = b"wasmlet-restore-1\n"
PAGE = 65536
# Data segments closer than this are written as one chunk (the zeros between included).
MERGE_GAP = 4096
_I32_CONST, _I64_CONST = 0x41, 0x42
_KEPT_CUSTOM = frozenset({"name"})


class NotRestorable(WasmBinaryError):
    """The module is not a snapshot this split supports; it is compiled whole."""


@dataclass(frozen=True, slots=True)
class RestoreGlobal:
    export: str
    valtype: str  # "i32" or "i64"
    value: int


@dataclass(frozen=True, slots=True)
class RestoreState:
    pages: int
    globals: tuple[RestoreGlobal, ...]
    chunks: tuple[tuple[int, bytes], ...]  # (offset, bytes), ascending, not overlapping


@dataclass(frozen=True, slots=True)
class Split:
    skeleton: bytes
    state: RestoreState


def is_marked(module: bytes) -> bool:
    """Whether `module` asks to be split (a `wasmlet.snapshot` custom section)."""
    try:
        for section in sections(module):
            name = Reader(module, section.start, section.end).name() if not section.id else ""
            if name == MARKER_SECTION:
                return True
    except WasmBinaryError:
        return False
    return False


def split(module: bytes) -> Split:
    """The skeleton and state of a validated snapshot module; NotRestorable otherwise."""
    imported_globals = 0
    memories = 0
    pages = 0
    out = bytearray(MAGIC)
    restored: list[RestoreGlobal] = []
    segments: list[tuple[int, bytes]] = []
    global_exports: list[bytes] = []
    exported = False
    for section in sections(module):
        raw = module[section.header : section.end]
        reader = Reader(module, section.start, section.end)
        if section.id == CUSTOM:
            if reader.name() in _KEPT_CUSTOM:
                out += raw
        elif section.id == IMPORT:
            for entry in imports(module, section):
                if entry.kind == IMPORT_MEMORY:
                    raise NotRestorable("the module imports its memory")
                imported_globals += entry.kind == IMPORT_GLOBAL
            out += raw
        elif section.id == MEMORY:
            memories, pages = 1, _initial_pages(reader)
            out += encode_section(MEMORY, _skeleton_memory(module, section.start, section.end))
        elif section.id == GLOBAL:
            payload, restored = _skeleton_globals(reader, imported_globals)
            global_exports = [
                encode_name(g.export) + b"\x03" + encode_uleb(int(g.export.rsplit("_", 1)[1]))
                for g in restored
            ]
            out += encode_section(GLOBAL, payload)
        elif section.id == EXPORT:
            count = reader.uleb()
            rest = module[reader.pos : section.end]
            out += encode_section(
                EXPORT, encode_uleb(count + len(global_exports)) + rest + b"".join(global_exports)
            )
            exported = True
        elif section.id == START:
            raise NotRestorable("the module has a start function")
        elif section.id == DATA:
            segments = _segments(reader)
        elif section.id == DATACOUNT:
            continue
        else:
            out += raw
    if memories != 1:
        raise NotRestorable("the module must define exactly one memory")
    if not exported:
        raise NotRestorable("the module has no export section")
    for offset, data in segments:
        if offset + len(data) > pages * PAGE:
            raise NotRestorable("a data segment lies outside the initial memory")
    state = RestoreState(pages, tuple(restored), _merge(segments))
    return Split(bytes(out), state)


def _initial_pages(reader: Reader) -> int:
    if reader.uleb() != 1:
        raise NotRestorable("the module must define exactly one memory")
    flags, minimum, _ = reader.limits()
    if flags & MEMORY64:
        raise NotRestorable("64-bit memories are not supported")
    return minimum


def _skeleton_memory(module: bytes, start: int, end: int) -> bytes:
    """The memory section's payload with the minimum at 0 (the maximum kept)."""
    reader = Reader(module, start, end)
    reader.uleb()
    flags, _, maximum = reader.limits()
    limits = bytes([flags]) + encode_uleb(0)
    if maximum is not None:
        limits += encode_uleb(maximum)
    return encode_uleb(1) + limits


def _skeleton_globals(reader: Reader, imported: int) -> tuple[bytes, list[RestoreGlobal]]:
    count = reader.uleb()
    payload = bytearray(encode_uleb(count))
    restored: list[RestoreGlobal] = []
    for offset in range(count):
        valtype = reader.byte()
        mutable = reader.byte()
        start = reader.pos
        reader.skip_const_expr()
        expr = reader.data[start : reader.pos]
        payload += bytes([valtype, mutable])
        if mutable != 1:
            payload += expr
            continue
        kinds = {I32: ("i32", _I32_CONST), I64: ("i64", _I64_CONST)}
        if valtype not in kinds:
            raise NotRestorable(f"a mutable global of type 0x{valtype:02x}")
        name, opcode = kinds[valtype]
        value = _const(expr, opcode)
        payload += bytes([opcode, 0, END])
        export = f"{GLOBAL_EXPORT_PREFIX}{imported + offset}"
        restored.append(RestoreGlobal(export, name, value))
    return bytes(payload), restored


def _const(expr: bytes, opcode: int) -> int:
    """The value of a constant expression that is one `iNN.const` and `end`."""
    reader = Reader(expr)
    if reader.byte() != opcode:
        raise NotRestorable("an initial value is not a constant")
    value = reader.sleb()
    if reader.byte() != END or reader.pos != len(expr):
        raise NotRestorable("an initial value is not a constant")
    return value


def _segments(reader: Reader) -> list[tuple[int, bytes]]:
    found: list[tuple[int, bytes]] = []
    for _ in range(reader.uleb()):
        if reader.uleb() != 0:
            raise NotRestorable("the module has passive or indexed data segments")
        start = reader.pos
        reader.skip_const_expr()
        offset = _const(reader.data[start : reader.pos], _I32_CONST) & 0xFFFFFFFF
        found.append((offset, reader.take(reader.uleb())))
    return found


def _merge(segments: list[tuple[int, bytes]]) -> tuple[tuple[int, bytes], ...]:
    """Chunks covering the segments: near ones joined, overlaps resolved in segment order
    (a later segment overwrites an earlier one, as instantiation writes them)."""
    order = sorted(range(len(segments)), key=lambda i: segments[i][0])
    groups: list[list[int]] = []
    end = -1
    filler = carried = 0  # zeros added to the current chunk, bytes of data in it
    for index in order:
        offset, data = segments[index]
        if not data:
            continue
        gap = max(0, offset - end)
        # Zeros are added only up to the data's own size: a chunk is never more than
        # twice the bytes of the segments it covers, however they are spread.
        if groups and gap <= MERGE_GAP and filler + gap <= carried:
            groups[-1].append(index)
            end = max(end, offset + len(data))
            filler, carried = filler + gap, carried + len(data)
        else:
            groups.append([index])
            end = offset + len(data)
            filler, carried = 0, len(data)
    chunks: list[tuple[int, bytes]] = []
    for group in groups:
        low = min(segments[i][0] for i in group)
        high = max(segments[i][0] + len(segments[i][1]) for i in group)
        block = bytearray(high - low)
        for index in sorted(group):
            offset, data = segments[index]
            block[offset - low : offset - low + len(data)] = data
        chunks.append((low, bytes(block)))
    return tuple(chunks)


def encode_state(base_key: str, state: RestoreState) -> bytes:
    """The restore artifact: which compiled skeleton to instantiate, and the state."""
    header = {
        "base": base_key,
        "pages": state.pages,
        "globals": [[g.export, g.valtype, g.value] for g in state.globals],
        "chunks": [[offset, len(data)] for offset, data in state.chunks],
    }
    return (
        STATE_MAGIC
        + json.dumps(header).encode()
        + b"\n"
        + b"".join(data for _, data in state.chunks)
    )


def decode_state(artifact: bytes) -> tuple[str, RestoreState]:
    """The base key and state of a restore artifact written by `encode_state`."""
    if not artifact.startswith(STATE_MAGIC):
        raise ValueError("not a restore artifact")
    newline = artifact.index(b"\n", len(STATE_MAGIC))
    header = json.loads(artifact[len(STATE_MAGIC) : newline])
    view = memoryview(artifact)
    pos = newline + 1
    chunks: list[tuple[int, bytes]] = []
    for offset, length in header["chunks"]:
        chunks.append((int(offset), bytes(view[pos : pos + int(length)])))
        pos += int(length)
    if pos != len(artifact):
        raise ValueError("a restore artifact of the wrong length")
    restored = tuple(
        RestoreGlobal(str(name), str(valtype), int(value))
        for name, valtype, value in header["globals"]
    )
    return str(header["base"]), RestoreState(int(header["pages"]), restored, tuple(chunks))


def apply_state(store: wasmtime.Store, instance: wasmtime.Instance, state: RestoreState) -> None:
    """Make a fresh instance of a skeleton the snapshot's: memory size, data, globals
    (before anything runs in it: its memory is all zeros)."""
    memory = _export(store, instance, "memory")
    assert isinstance(memory, wasmtime.Memory)
    missing = state.pages - memory.size(store)
    if missing > 0:
        memory.grow(store, missing)
    if memory.data_len(store) < state.pages * PAGE:
        raise RuntimeError("the memory could not be grown to the snapshot's size")
    base = memory.data_ptr(store)
    for offset, data in state.chunks:
        ctypes.memmove(ctypes.addressof(base.contents) + offset, data, len(data))
    for item in state.globals:
        found = _export(store, instance, item.export)
        assert isinstance(found, wasmtime.Global)
        make = wasmtime.Val.i32 if item.valtype == "i32" else wasmtime.Val.i64
        found.set_value(store, make(item.value))
