"""The engine build: the sdist it starts from, the patch it applies, what it produces."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest
import wasmtime

from wasmlet.js import engine
from wasmlet.js.engine import EngineBuild, EngineBuildError, ensure_engine


def test_the_cached_build_is_found_without_building(js_engine: EngineBuild) -> None:
    again = ensure_engine(js_engine.path.parent.parent)
    assert again == js_engine
    assert again.key == engine.build_key()


def test_the_engine_is_a_guest_abi_module_with_an_init_export(js_engine: EngineBuild) -> None:
    module = wasmtime.Module(wasmtime.Engine(), js_engine.path.read_bytes())
    exports = {item.name for item in module.exports}
    assert {"_start", "memory", "wasmlet_js_init"} <= exports
    imports = {(item.module, item.name) for item in module.imports}
    assert {module_name for module_name, _ in imports} == {"wasi_snapshot_preview1", "wasmlet"}
    assert {name for module_name, name in imports if module_name == "wasmlet"} == {
        "log", "set_status", "set_header", "db_query", "db_result", "http_request",
        "http_result", "http_body",
    }  # fmt: skip


def test_a_corrupted_sdist_is_fetched_again_and_verified(tmp_path: Path) -> None:
    cached = tmp_path / engine.QUICKJS_SDIST_FILE
    cached.write_bytes(b"not the sdist")
    fetched = engine._fetch_sdist(tmp_path)
    assert fetched == cached
    assert engine._sha256(fetched) == engine.QUICKJS_SDIST_SHA256


def _fake_sdist(path: Path, quickjs_c: bytes) -> None:
    with tarfile.open(path, "w:gz") as archive:
        for name in engine.QUICKJS_SOURCES:
            data = quickjs_c if name == "quickjs.c" else b"/* empty */\n"
            info = tarfile.TarInfo(f"quickjs-0/{engine.QUICKJS_DIR}/{name}")
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))


def test_sources_that_do_not_match_the_patch_are_refused(tmp_path: Path) -> None:
    sdist = tmp_path / "fake.tar.gz"
    _fake_sdist(sdist, b"int js_parse_error(void) { return -1; }\n")
    with pytest.raises(EngineBuildError, match="patch anchor"):
        engine._extract(sdist, tmp_path / "out")


def test_the_patch_reports_the_token_position(tmp_path: Path) -> None:
    sdist = tmp_path / "fake.tar.gz"
    _fake_sdist(sdist, b"int f(void) {\n" + engine._PATCH_ANCHOR.encode() + b"}\n")
    extracted = engine._extract(sdist, tmp_path / "out")
    text = (extracted / "quickjs.c").read_text()
    assert "wasmlet_js_parse_error_at(s->token.ptr, s->token.line_num);" in text


def test_a_failing_compiler_is_reported_with_its_output(tmp_path: Path) -> None:
    bad = tmp_path / "bad.c"
    bad.write_text("int main(void) { return undefined_name; }\n")
    with pytest.raises(EngineBuildError, match="undefined_name"):
        engine._run(
            engine._zig_cc("-target", "wasm32-wasi", "-c", str(bad), "-o", str(tmp_path / "o")),
            "compiling bad.c",
        )
