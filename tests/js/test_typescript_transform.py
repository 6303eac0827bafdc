"""wasmlet.js.typescript on its own: the transformer's two modes, its bounds, the source map."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from wasmlet.errors import InvalidSource, TooManyRequests
from wasmlet.js import typescript
from wasmlet.js.package import MAX_SOURCE_BYTES, JavaScriptPackager, ignore_type_declarations
from wasmlet.js.typescript import LineMap, transform


def test_types_only_are_stripped_in_place() -> None:
    source = "interface A { a: string }\nexport const f = <T,>(a: T): T => a as T;\n"
    result = transform(source, "f.ts")
    assert result.mode == "strip"
    assert result.positions is None
    assert len(result.code) == len(source)
    assert result.code.splitlines()[1].strip() == "export const f =     (a   )    => a     ;"


def test_an_enum_is_transformed_and_laid_out_on_the_ts_lines() -> None:
    source = "enum E {\n  A,\n  B,\n}\n\nexport const b: number = E.B;\n"
    result = transform(source, "e.ts")
    assert result.mode == "transform"
    assert "enum" not in result.code
    assert result.positions is not None
    assert result.positions.layout is not None
    lines = result.code.splitlines()
    assert lines[0].startswith("var E = ")  # the enum's generated lines, joined on line 1
    assert lines[5] == "export const b = 1;"  # line 6, as in the .ts file
    assert result.positions.original(6) == (6, None)
    assert result.positions.original(6, 14) == (6, 14)  # `b`


def test_the_layout_is_dropped_when_it_would_change_a_token() -> None:
    # The whitespace-only line inside the template literal would be dropped by the
    # layout: printing the result differs, so the transformed code is kept as it was.
    source = "enum E { A }\nconst s = `x\n   \n`;\nexport const handler = () => s + E.A;\n"
    result = transform(source, "t.ts")
    assert result.mode == "transform"
    assert result.positions is not None
    assert result.positions.layout is None
    assert "`x\n   \n`" in result.code


def test_the_transform_is_bounded_in_time() -> None:
    with pytest.raises(InvalidSource, match=r"could not be transformed within 0\.001s"):
        transform("const a: number = 1;\n" * 1000, "slow.ts", timeout_s=0.001)


def test_the_source_size_limit_applies_before_any_transform() -> None:
    source = "let a: number = 1;\n" + " " * MAX_SOURCE_BYTES
    with pytest.raises(InvalidSource, match=f"Invalid TypeScript: source over {MAX_SOURCE_BYTES}"):
        JavaScriptPackager().package(source, filename="big.ts")


def test_line_map_decodes_vlq_mappings() -> None:
    # Generated line 1: column 0 -> 1:1, column 4 -> 1:5; line 3: column 2 -> 3:1 (relative:
    # line +2, column -4); "gBAAA" is a 5-digit VLQ (+16) checking continuation bits.
    line_map = LineMap.parse("AAAA,IAAI;;EAEJ,gBAAA")
    assert line_map.original(1, 1) == (1, 1)
    assert line_map.original(1, 7) == (1, 5)
    assert line_map.original(2) is None
    assert line_map.original(3) == (3, None)
    assert line_map.original(3, 19) == (3, 1)
    assert line_map.lines[3][1][0] == 18


def test_type_declaration_imports_are_blanked_in_place() -> None:
    source = (
        'import "jsr:@supabase/functions-js/edge-runtime.d.ts";\n'
        "  import './types.d.mts'\n"
        'import "./real.ts";\n'
        "const s = \"import 'x.d.ts'\";\n"
    )
    blanked = ignore_type_declarations(source)
    assert len(blanked) == len(source)
    lines = blanked.splitlines()
    assert lines[0].strip() == "" and lines[1].strip() == ""
    assert lines[2:] == source.splitlines()[2:]


@pytest.mark.parametrize(
    "line",
    [
        'let a = "é"; let b: = 2;',
        'let a = "漢字"; let b: = 2;',
        'let a = "😀😀"; let b: = 2;',
        '\tlet a = "e\u0301"; let b: = 2;',
    ],
    ids=["accent", "wide", "emoji", "tab-combining"],
)
def test_syntax_error_columns_count_characters(line: str) -> None:
    # The parser draws its caret in display cells (a tab 4, CJK and emoji 2, a combining
    # mark 0); the message counts characters, as QuickJS's messages do.
    with pytest.raises(InvalidSource) as raised:
        transform(f"const ok = 1;\n{line}\n", "cols.ts")
    column = line.index(": =") + 3
    assert f"(cols.ts: line 2, column {column})" in str(raised.value)


def test_transforms_at_once_are_bounded() -> None:
    held = 0
    try:
        while typescript._SLOTS.acquire(blocking=False):
            held += 1
        assert held == typescript.TRANSFORM_CONCURRENCY
        with pytest.raises(TooManyRequests, match="transforming at once"):
            transform("const a: number = 1;\n", "busy.ts", timeout_s=0.2)
    finally:
        for _ in range(held):
            typescript._SLOTS.release()
    assert transform("const a: number = 1;\n", "free.ts").mode == "strip"


def _transform_children() -> list[int]:
    """Processes this test process started that are still TypeScript transformers."""
    found = []
    for task in Path(f"/proc/{os.getpid()}/task").iterdir():
        for pid in (task / "children").read_text().split():
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            except FileNotFoundError:
                continue
            if typescript.SCRIPT.name.encode() in cmdline:
                found.append(int(pid))
    return found


def test_a_spare_transformer_waits_for_the_next_deploy_and_ends_on_close() -> None:
    assert transform("const a: number = 1;\n", "one.ts").code.startswith("const a")
    assert len(_transform_children()) == 1  # the spare, its transformer loaded
    assert transform("const b: string = '';\n", "two.ts").code.startswith("const b")
    assert len(_transform_children()) == 1
    typescript.close_spare()
    assert _transform_children() == []
