"""The runtime label a version shows, read from its module's custom section."""

from __future__ import annotations

import json

from tests.support.wasmgen import says
from wasmlet.registry.runtimes import JS_SECTION, runtime_of
from wasmlet.runtime.wasmbin import custom_section


def with_section(title: str, payload: bytes) -> bytes:
    return says("x") + custom_section(title, payload)


def test_plain_module_is_wasm() -> None:
    assert runtime_of(says("x")) == "wasm"
    assert runtime_of(with_section("name", b"\x00")) == "wasm"


def test_packaged_javascript_and_typescript() -> None:
    meta = {"runtime": "javascript", "filename": "handler.js", "source": "..."}
    assert runtime_of(with_section(JS_SECTION, json.dumps(meta).encode())) == "javascript"
    meta["filename"] = "handler.ts"
    assert runtime_of(with_section(JS_SECTION, json.dumps(meta).encode())) == "typescript"


def test_forged_or_broken_metadata_gives_a_bounded_label() -> None:
    for payload in (b"not json", b"[1]", json.dumps({"runtime": "<b>" * 50}).encode()):
        assert runtime_of(with_section(JS_SECTION, payload)) == "javascript"
    assert runtime_of(b"\x00asm\x01\x00\x00\x00\x00\xff") == "wasm"  # a truncated section
    assert runtime_of(b"not wasm") == "wasm"
