"""Large WebAssembly modules written byte by byte: fast to make, slow to compile."""

from __future__ import annotations

from wasmlet.runtime.wasmbin import MAGIC, encode_name, encode_section, encode_uleb

_TYPE, _FUNCTION, _MEMORY, _EXPORT, _CODE = 1, 3, 5, 7, 10

__all__ = ["many_functions"]


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
