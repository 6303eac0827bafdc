"""Which runtime a stored module was deployed for, read from the module itself.

A JavaScript (or TypeScript) function is packaged into a module that carries the
`wasmlet.javascript` custom section (see `wasmlet.js.package`); any other module is
plain `wasm`. The label only describes a version in `versions` listings: it grants
nothing, so a section forged by an uploader changes no more than the label, and the
label is bounded to a short identifier.
"""

from __future__ import annotations

import json
import re

from wasmlet.runtime.wasmbin import Reader, WasmBinaryError, sections

JS_SECTION = "wasmlet.javascript"
WASM = "wasm"
JAVASCRIPT = "javascript"
TYPESCRIPT = "typescript"
_LABEL = re.compile(r"[a-z][a-z0-9_-]{0,31}")
_TS_SUFFIXES = (".ts", ".mts", ".cts", ".tsx")
CUSTOM = 0


def runtime_of(wasm: bytes) -> str:
    """`wasm`, `javascript`, `typescript` (or the packager's own short label)."""
    try:
        for section in sections(wasm):
            if section.id != CUSTOM:
                continue
            reader = Reader(wasm, section.start, section.end)
            if reader.name() == JS_SECTION:
                return _script_runtime(wasm[reader.pos : section.end])
    except WasmBinaryError:
        return WASM
    return WASM


def _script_runtime(payload: bytes) -> str:
    try:
        metadata = json.loads(payload)
    except (ValueError, RecursionError):
        return JAVASCRIPT
    if not isinstance(metadata, dict):
        return JAVASCRIPT
    filename = metadata.get("filename")
    if isinstance(filename, str) and filename.lower().endswith(_TS_SUFFIXES):
        return TYPESCRIPT
    label = metadata.get("runtime")
    if isinstance(label, str) and _LABEL.fullmatch(label):
        return label
    return JAVASCRIPT
