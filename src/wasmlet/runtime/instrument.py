"""Deploy-time rewrite that lets the host see a refused memory growth.

A store limit makes `memory.grow` return -1 instead of trapping, and the guest then
fails in its own way (a trap, a non-zero exit, a message). To answer 507 rather than
500 the host must know that a growth was refused, whatever the memory's size is
afterwards. Every `memory.grow` on memory 0 is rewritten into a call of an added
function that performs the growth and, when it is refused, sets an added exported
global (`REFUSED_GROWTH_GLOBAL`).

The rewrite works on the binary (`wasmbin`, `wasmcode`), as the JavaScript snapshot
does: one pass over the module, every byte the rewrite does not need to change copied
as it was (custom sections, names and all), and a module without a `memory.grow` on
memory 0 returned unchanged. The added type, function and global come after all the
module's own, so no index in the module changes. A module whose memory 0 is 64-bit is
left as it is (its `memory.grow` takes an i64; the refusal then reads as a trap).
Runs in the compile child, after `wasmtime.Module.validate` accepted the module.
"""

from __future__ import annotations

from dataclasses import dataclass

from wasmlet.errors import InvalidWasm
from wasmlet.runtime.wasmbin import (
    CODE,
    EXPORT,
    FUNCTION,
    GLOBAL,
    I32,
    IMPORT,
    IMPORT_FUNCTION,
    IMPORT_GLOBAL,
    IMPORT_MEMORY,
    MAGIC,
    MEMORY,
    MEMORY64,
    SECTION_ORDER,
    TYPE,
    Reader,
    Section,
    WasmBinaryError,
    encode_name,
    encode_section,
    encode_sleb,
    encode_uleb,
    imports,
    sections,
)
from wasmlet.runtime.wasmcode import memory_grow_sites

# Exports and imports under this prefix are the platform's: a deployed module may not
# name one (it could forge a signal, as a "refused growth" flag turning a trap into 507).
RESERVED_PREFIX = "__wasmlet_"
REFUSED_GROWTH_GLOBAL = RESERVED_PREFIX + "grow_refused"

_FUNC_TYPE = 0x60
_GROW_TYPE = bytes([_FUNC_TYPE, 1, I32, 1, I32])  # (param i32) (result i32)


@dataclass(slots=True)
class _Layout:
    """What the rewrite needs to know of the module, read in one pass."""

    types: int = 0
    imported_functions: int = 0
    imported_globals: int = 0
    functions: int = 0
    globals: int = 0
    memory0_64bit: bool | None = None  # None: no memory 0


def check_reserved_exports(wasm: bytes) -> None:
    """Refuse exports in the platform's names (checked before instrumentation adds one)."""
    try:
        for section in sections(wasm):
            if section.id != EXPORT:
                continue
            reader = Reader(wasm, section.start, section.end)
            for _ in range(reader.uleb()):
                name = reader.name()
                reader.byte()
                reader.uleb()
                if name.startswith(RESERVED_PREFIX):
                    raise InvalidWasm(
                        f"Invalid WASM binary: export {name!r} uses the platform's reserved "
                        f"prefix {RESERVED_PREFIX!r}"
                    )
    except (WasmBinaryError, UnicodeDecodeError) as exc:
        raise InvalidWasm(f"Invalid WASM binary: unreadable export section ({exc})") from exc


def instrument_memory_growth(wasm: bytes) -> bytes:
    """Return `wasm` with every `memory.grow` on memory 0 recording a refusal."""
    try:
        return _instrument(wasm)
    except (WasmBinaryError, UnicodeDecodeError) as exc:
        raise InvalidWasm(f"Invalid WASM binary: cannot instrument it: {exc}") from exc


def _instrument(wasm: bytes) -> bytes:
    found = list(sections(wasm))
    layout = _read_layout(wasm, found)
    code = next((s for s in found if s.id == CODE), None)
    if code is None or layout.memory0_64bit is not False:
        return wasm
    grow = layout.imported_functions + layout.functions
    flag = layout.imported_globals + layout.globals
    new_code = _rewrite_code(wasm, code, grow, flag)
    if new_code is None:
        return wasm
    added = {
        TYPE: _GROW_TYPE,
        FUNCTION: encode_uleb(layout.types),
        GLOBAL: bytes([I32, 1]) + b"\x41" + encode_sleb(0) + b"\x0b",  # (mut i32) (i32.const 0)
        EXPORT: encode_name(REFUSED_GROWTH_GLOBAL) + b"\x03" + encode_uleb(flag),
    }
    present = {s.id for s in found}
    out = bytearray(MAGIC)
    for section in found:
        for missing in _missing_before(section.id, added, present):
            out += encode_section(missing, encode_uleb(1) + added.pop(missing))
        if section.id == CODE:
            out += new_code
        elif section.id in added:
            out += _appended(wasm, section, added.pop(section.id))
        else:
            out += wasm[section.header : section.end]
    for missing in [i for i in SECTION_ORDER if i in added]:
        out += encode_section(missing, encode_uleb(1) + added.pop(missing))
    return bytes(out)


def _read_layout(wasm: bytes, found: list[Section]) -> _Layout:
    layout = _Layout()
    for section in found:
        reader = Reader(wasm, section.start, section.end)
        if section.id == TYPE:
            layout.types = _count_types(reader)
        elif section.id == IMPORT:
            _read_imports(wasm, section, layout)
        elif section.id == FUNCTION:
            layout.functions = reader.uleb()
        elif section.id == GLOBAL:
            layout.globals = reader.uleb()
        elif section.id == MEMORY and layout.memory0_64bit is None and reader.uleb():
            layout.memory0_64bit = bool(reader.limits()[0] & MEMORY64)
    return layout


def _count_types(reader: Reader) -> int:
    """Types in the type index space: a recursion group (GC) defines several."""
    total = 0
    for _ in range(reader.uleb()):
        if reader.data[reader.pos : reader.pos + 1] == b"\x4e":  # rec
            reader.byte()
            members = reader.uleb()
            for _ in range(members):
                _skip_subtype(reader)
            total += members
        else:
            _skip_subtype(reader)
            total += 1
    return total


def _skip_subtype(reader: Reader) -> None:
    kind = reader.byte()
    if kind in (0x50, 0x4F):  # sub, sub final: supertypes, then the composite type
        for _ in range(reader.uleb()):
            reader.uleb()
        kind = reader.byte()
    if kind == _FUNC_TYPE:
        for _ in range(2):  # parameters, results
            for _ in range(reader.uleb()):
                reader.skip_valtype()
    elif kind == 0x5F:  # struct
        for _ in range(reader.uleb()):
            reader.skip_valtype()
            reader.byte()
    elif kind == 0x5E:  # array
        reader.skip_valtype()
        reader.byte()
    else:
        raise WasmBinaryError(f"unsupported type form 0x{kind:02x}")


def _read_imports(wasm: bytes, section: Section, layout: _Layout) -> None:
    for entry in imports(wasm, section):
        if entry.kind == IMPORT_FUNCTION:
            layout.imported_functions += 1
        elif entry.kind == IMPORT_GLOBAL:
            layout.imported_globals += 1
        elif entry.kind == IMPORT_MEMORY and layout.memory0_64bit is None:
            layout.memory0_64bit = bool(entry.memory_flags & MEMORY64)


def _rewrite_code(wasm: bytes, code: Section, grow: int, flag: int) -> bytes | None:
    """The new code section, or None when no body grows memory 0."""
    reader = Reader(wasm, code.start, code.end)
    count = reader.uleb()
    call = b"\x10" + encode_uleb(grow)
    bodies = bytearray(encode_uleb(count + 1))
    copied_from = reader.pos  # bodies without a site are copied in runs
    rewritten = 0
    for _ in range(count):
        header = reader.pos
        size = reader.uleb()
        start = reader.pos
        end = start + size
        if end > code.end:
            raise WasmBinaryError("a function body runs past its section")
        sites = memory_grow_sites(wasm, start, end)
        reader.pos = end
        if not sites:
            continue
        bodies += wasm[copied_from:header]
        body = bytearray()
        at = start
        for site_start, site_end in sites:
            body += wasm[at:site_start] + call
            at = site_end
        body += wasm[at:end]
        bodies += encode_uleb(len(body)) + body
        copied_from = end
        rewritten += len(sites)
    if reader.pos != code.end:
        raise WasmBinaryError("the code section has bytes after its last body")
    if not rewritten:
        return None
    bodies += wasm[copied_from : code.end]
    grow_body = _grow_body(flag)
    bodies += encode_uleb(len(grow_body)) + grow_body
    return encode_section(CODE, bytes(bodies))


def _grow_body(flag: int) -> bytes:
    """(local i32) grow memory 0 by the argument; on -1 set the flag; return the result."""
    return (
        b"\x01\x01\x7f"  # one local: i32
        b"\x20\x00\x40\x00\x22\x01"  # local.get 0, memory.grow 0, local.tee 1
        b"\x41\x7f\x46"  # i32.const -1, i32.eq
        b"\x04\x40\x41\x01\x24" + encode_uleb(flag) + b"\x0b"  # if: global.set flag 1
        b"\x20\x01\x0b"  # local.get 1, end
    )


def _appended(wasm: bytes, section: Section, entry: bytes) -> bytes:
    """`section` (a vector) with `entry` added at its end."""
    reader = Reader(wasm, section.start, section.end)
    count = reader.uleb()
    payload = encode_uleb(count + 1) + wasm[reader.pos : section.end] + entry
    return encode_section(section.id, payload)


def _missing_before(section_id: int, added: dict[int, bytes], present: set[int]) -> list[int]:
    """The added sections the module lacks that go before a section with `section_id`."""
    if section_id not in SECTION_ORDER:
        return []  # a custom section: the missing ones go before the next known section
    place = SECTION_ORDER.index(section_id)
    return [i for i in SECTION_ORDER[:place] if i in added and i not in present]
