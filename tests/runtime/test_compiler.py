"""The compiler's limits, against real compile processes: each refusal names its limit."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.support.build import wat
from tests.support.wasmgen import many_functions
from wasmlet.errors import InvalidWasm
from wasmlet.runtime.compiler import CompileLimits, ModuleCompiler


def _compile_children() -> list[int]:
    """Processes this test process started that are still compile children."""
    found = []
    for task in Path(f"/proc/{os.getpid()}/task").iterdir():
        for pid in (task / "children").read_text().split():
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            except FileNotFoundError:
                continue
            if b"compile_child" in cmdline:
                found.append(int(pid))
    return found


def test_memory_limit_refuses_with_its_size(tmp_path: Path) -> None:
    compiler = ModuleCompiler(tmp_path, CompileLimits(memory_mb=256))
    with pytest.raises(InvalidWasm, match="more than the limit of 256 MB of memory"):
        compiler.compile(many_functions(200_000))
    assert not list(tmp_path.rglob("*.cwasm"))


def test_wall_clock_limit_refuses_and_ends_the_child(tmp_path: Path) -> None:
    limits = CompileLimits(timeout_s=1, memory_mb=4096)
    compiler = ModuleCompiler(tmp_path, limits)
    with pytest.raises(InvalidWasm, match="took longer than the limit of 1s"):
        compiler.compile(many_functions(150_000))
    assert _compile_children() == []
    assert not list(tmp_path.rglob("*.cwasm"))


def test_spare_child_serves_the_next_compile_and_ends_on_close(tmp_path: Path) -> None:
    with ModuleCompiler(tmp_path, keep_spare=True) as compiler:
        first = compiler.compile(wat("hello"))
        assert len(_compile_children()) == 1  # the spare, waiting
        second = compiler.compile(wat("echo"))
        assert first.path.is_file() and second.path.is_file()
    assert _compile_children() == []
