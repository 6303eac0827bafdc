"""The few pieces of the WebAssembly binary format the platform reads itself.

LEB128 integers, names, sections, and a reader that can step over constant
expressions (see the WebAssembly core specification, "Binary Format"). Errors in
the input are `WasmBinaryError`. The input is treated as hostile: every read is
bounded by the end it was given, a LEB128 number longer than its type allows is an
error, and nothing is read twice.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

MAGIC = b"\0asm\x01\0\0\0"
CUSTOM, TYPE, IMPORT, FUNCTION, TABLE, MEMORY, GLOBAL, EXPORT = 0, 1, 2, 3, 4, 5, 6, 7
START, ELEMENT, CODE, DATA, DATACOUNT, TAG = 8, 9, 10, 11, 12, 13
# Where each known section goes: the binary format fixes this order.
SECTION_ORDER = (TYPE, IMPORT, FUNCTION, TABLE, MEMORY, TAG, GLOBAL, EXPORT, START, ELEMENT,
                 DATACOUNT, CODE, DATA)  # fmt: skip
MAX_LEB32 = 5  # bytes of a LEB128 u32 / s32 / s33
MAX_LEB64 = 10  # bytes of a LEB128 u64 / s64
I32, I64, F32, F64 = 0x7F, 0x7E, 0x7D, 0x7C
REF, REF_NULL = 0x64, 0x63  # (ref ht), (ref null ht): a heap type follows
IMPORT_FUNCTION, IMPORT_TABLE, IMPORT_MEMORY, IMPORT_GLOBAL, IMPORT_TAG = 0, 1, 2, 3, 4
MEMORY64 = 0x04  # in a memory's limits flags
END = 0x0B


class WasmBinaryError(ValueError):
    """The bytes are not a module this code can read."""


def encode_uleb(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def encode_sleb(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        done = (value == 0 and not byte & 0x40) or (value == -1 and byte & 0x40)
        out.append(byte if done else byte | 0x80)
        if done:
            return bytes(out)


def encode_name(text: str) -> bytes:
    raw = text.encode("utf-8")
    return encode_uleb(len(raw)) + raw


def encode_section(section_id: int, payload: bytes) -> bytes:
    return bytes([section_id]) + encode_uleb(len(payload)) + payload


def custom_section(title: str, payload: bytes) -> bytes:
    return encode_section(CUSTOM, encode_name(title) + payload)


class Reader:
    """Reads a module's bytes from `pos` up to `end`."""

    def __init__(self, data: bytes, pos: int = 0, end: int | None = None) -> None:
        self.data = data
        self.pos = pos
        self.end = len(data) if end is None else end

    def byte(self) -> int:
        if self.pos >= self.end:
            raise WasmBinaryError("unexpected end of module")
        value = self.data[self.pos]
        self.pos += 1
        return value

    def uleb(self) -> int:
        """An unsigned 32-bit LEB128 number (a count, an index, a size)."""
        pos = self.pos
        if pos < self.end and self.data[pos] < 0x80:  # one byte: most of them
            self.pos = pos + 1
            return self.data[pos]
        return self._leb(signed=False, max_bytes=MAX_LEB32)

    def uleb64(self) -> int:
        """An unsigned 64-bit LEB128 number (a memory64 offset or limit)."""
        return self._leb(signed=False, max_bytes=MAX_LEB64)

    def sleb(self) -> int:
        """A signed LEB128 number of up to 64 bits."""
        pos = self.pos
        if pos < self.end and self.data[pos] < 0x80:
            self.pos = pos + 1
            byte = self.data[pos]
            return byte - 0x80 if byte & 0x40 else byte
        return self._leb(signed=True, max_bytes=MAX_LEB64)

    def _leb(self, *, signed: bool, max_bytes: int) -> int:
        result = shift = 0
        for _ in range(max_bytes):
            byte = self.byte()
            result |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                if signed and byte & 0x40:
                    result -= 1 << shift
                return result
        raise WasmBinaryError(f"a LEB128 number longer than {max_bytes} bytes")

    def take(self, count: int) -> bytes:
        if self.pos + count > self.end:
            raise WasmBinaryError("unexpected end of module")
        chunk = self.data[self.pos : self.pos + count]
        self.pos += count
        return chunk

    def name(self) -> str:
        raw = self.take(self.uleb())
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise WasmBinaryError(f"a name is not UTF-8 ({exc.reason})") from exc

    def skip_valtype(self) -> None:
        """Step over a value type: one byte, or a reference type and its heap type."""
        if self.byte() in (REF, REF_NULL):
            self.sleb()

    def limits(self) -> tuple[int, int, int | None]:
        """A memory's or table's limits: flags (bit 0: a maximum follows, bit 2: 64-bit),
        minimum, maximum."""
        flags = self.byte()
        read = self.uleb64 if flags & 0x04 else self.uleb
        minimum = read()
        maximum = read() if flags & 1 else None
        return flags, minimum, maximum

    def skip_const_expr(self) -> None:
        """Step over a constant expression up to and including its `end`."""
        while True:
            op = self.byte()
            if op == END:
                return
            if op in (0x41, 0x42):  # i32.const, i64.const
                self.sleb()
            elif op == 0x43:  # f32.const
                self.take(4)
            elif op == 0x44:  # f64.const
                self.take(8)
            elif op in (0x23, 0xD2):  # global.get, ref.func
                self.uleb()
            elif op == 0xD0:  # ref.null: a heap type
                self.sleb()
            elif op in (0x6A, 0x6B, 0x6C, 0x7C, 0x7D, 0x7E):  # extended-const arithmetic
                continue
            elif op == 0xFD:  # v128.const
                self.uleb()
                self.take(16)
            else:
                raise WasmBinaryError(f"unsupported opcode 0x{op:02x} in a constant expression")


@dataclass(frozen=True, slots=True)
class Section:
    id: int
    header: int  # where the section starts (its id byte)
    start: int  # where its payload starts
    end: int


def sections(module: bytes) -> Iterator[Section]:
    """The sections of `module`, in order."""
    if not module.startswith(MAGIC):
        raise WasmBinaryError("not a WebAssembly 1.0 module")
    reader = Reader(module, len(MAGIC))
    while reader.pos < len(module):
        header = reader.pos
        section_id = reader.byte()
        size = reader.uleb()
        start = reader.pos
        reader.pos += size
        if reader.pos > len(module):
            raise WasmBinaryError("a section runs past the end of the module")
        yield Section(section_id, header, start, start + size)


@dataclass(frozen=True, slots=True)
class Import:
    module: str
    name: str
    kind: int  # IMPORT_FUNCTION ... IMPORT_TAG
    memory_flags: int = 0  # an imported memory's limits flags (MEMORY64, ...)


def imports(module: bytes, section: Section) -> Iterator[Import]:
    """The entries of an import section, in order."""
    reader = Reader(module, section.start, section.end)
    for _ in range(reader.uleb()):
        where = reader.name()
        name = reader.name()
        kind = reader.byte()
        flags = 0
        if kind in (IMPORT_FUNCTION, IMPORT_TAG):
            if kind == IMPORT_TAG:
                reader.byte()  # attribute: exception
            reader.uleb()  # type index
        elif kind == IMPORT_TABLE:
            reader.skip_valtype()
            reader.limits()
        elif kind == IMPORT_MEMORY:
            flags = reader.limits()[0]
        elif kind == IMPORT_GLOBAL:
            reader.skip_valtype()
            reader.byte()  # mutability
        else:
            raise WasmBinaryError(f"unknown import kind {kind}")
        yield Import(where, name, kind, flags)
