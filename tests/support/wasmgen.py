"""WebAssembly modules made for tests: large ones written byte by byte (fast to make,
slow to compile) and small ones that say a given text."""

from __future__ import annotations

import wasmtime

from wasmlet.runtime.wasmbin import MAGIC, encode_name, encode_section, encode_uleb

_TYPE, _FUNCTION, _MEMORY, _EXPORT, _CODE = 1, 3, 5, 7, 10

__all__ = ["many_functions", "says"]


def many_functions(count: int) -> bytes:
    """A WASI command module with `count` empty functions (the first one is `_start`)."""
    types = encode_section(_TYPE, encode_uleb(1) + b"\x60\x00\x00")  # () -> ()
    functions = encode_section(_FUNCTION, encode_uleb(count) + b"\x00" * count)
    memory = encode_section(_MEMORY, encode_uleb(1) + b"\x00\x01")
    exports = encode_section(
        _EXPORT,
        encode_uleb(2)
        + encode_name("_start") + b"\x00" + encode_uleb(0)
        + encode_name("memory") + b"\x02" + encode_uleb(0),
    )  # fmt: skip
    body = b"\x02\x00\x0b"  # size 2: no locals, end
    code = encode_section(_CODE, encode_uleb(count) + body * count)
    return MAGIC + types + functions + memory + exports + code


def says(text: str) -> bytes:
    """A WASI command module that writes `text` (ASCII) to stdout: a body per version."""
    data = text.encode("ascii")
    escaped = "".join(f"\\{byte:02x}" for byte in data)
    return bytes(
        wasmtime.wat2wasm(
            f"""(module
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "\\10\\00\\00\\00")
  (data (i32.const 4) "{_le32(len(data))}")
  (data (i32.const 16) "{escaped}")
  (func (export "_start")
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))"""
        )
    )


def _le32(value: int) -> str:
    return "".join(f"\\{byte:02x}" for byte in value.to_bytes(4, "little"))
