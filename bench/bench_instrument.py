"""Time the deploy-time memory-growth rewrite on large modules.

    .venv/bin/python bench/bench_instrument.py [--impl PATH] [MODULE.wasm ...]

Without modules it times a generated one: 100,000 functions, each growing memory 0
(900 KB, the worst case: every body is rewritten). `--impl` loads
`instrument_memory_growth` from another file, e.g. an older `instrument.py` taken with
`git show REV:src/wasmlet/runtime/instrument.py > /tmp/old_instrument.py`, to compare
two implementations on the same machine in the same minute. Best of three runs each.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from wasmlet.runtime.instrument import instrument_memory_growth
from wasmlet.runtime.wasmbin import MAGIC, encode_name, encode_section, encode_uleb

Rewrite = Callable[[bytes], bytes]


def growing_module(count: int) -> bytes:
    body = bytes([0x00, 0x41, 0x00, 0x40, 0x00, 0x1A, 0x0B])  # drop (memory.grow (i32.const 0))
    exports = encode_name("_start") + b"\x00\x00" + encode_name("memory") + b"\x02\x00"
    return (
        MAGIC
        + encode_section(1, encode_uleb(1) + b"\x60\x00\x00")
        + encode_section(3, encode_uleb(count) + b"\x00" * count)
        + encode_section(5, encode_uleb(1) + b"\x00\x01")
        + encode_section(7, encode_uleb(2) + exports)
        + encode_section(10, encode_uleb(count) + (encode_uleb(len(body)) + body) * count)
    )


def load(path: str | None) -> Rewrite:
    if path is None:
        return instrument_memory_growth
    spec = importlib.util.spec_from_file_location("other_instrument", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["other_instrument"] = module
    spec.loader.exec_module(module)
    rewrite: Rewrite = module.instrument_memory_growth
    return rewrite


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--impl", default=None)
    parser.add_argument("modules", nargs="*")
    args = parser.parse_args()
    rewrite = load(args.impl)
    with tempfile.TemporaryDirectory() as tmp:
        paths = [Path(m) for m in args.modules]
        if not paths:
            paths = [Path(tmp, "grow100k.wasm")]
            paths[0].write_bytes(growing_module(100_000))
        for path in paths:
            wasm = path.read_bytes()
            times = []
            for _ in range(3):
                started = time.perf_counter()
                out = rewrite(wasm)
                times.append(time.perf_counter() - started)
            digest = hashlib.sha256(out).hexdigest()[:12]
            print(
                f"{path.name}: {len(wasm)} B -> {len(out)} B in {min(times) * 1000:.0f} ms "
                f"(best of 3), output sha256 {digest}"
            )


if __name__ == "__main__":
    main()
