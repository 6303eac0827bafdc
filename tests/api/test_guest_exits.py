"""A failing guest's error message says what happened, whatever way it failed."""

from __future__ import annotations

import pytest

from tests.support.build import wat
from tests.support.server import ServerProcess

PROC_EXIT = '(import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))'
MEMORY = '(memory (export "memory") 1)'


@pytest.mark.parametrize(
    ("module", "said"),
    [
        (
            f'(module {PROC_EXIT} {MEMORY} (func (export "_start") (call $exit (i32.const -1))))',
            "exited with code -1",
        ),
        (
            f'(module {PROC_EXIT} {MEMORY} (func (export "_start") (call $exit (i32.const 200))))',
            "exited with code 200",
        ),
        (
            f'(module {PROC_EXIT} {MEMORY} (func (export "_start") (call $exit (i32.const 3))))',
            "exited with code 3",
        ),
        (
            f"(module {MEMORY} (tag $oops (param i32))"
            ' (func (export "_start") (throw $oops (i32.const 7))))',
            "uncaught WebAssembly exception",
        ),
    ],
    ids=["exit-minus-one", "exit-200", "exit-3", "thrown-exception"],
)
def test_failure_message_says_what_happened(
    server: ServerProcess, fname: str, module: str, said: str
) -> None:
    assert server.deploy(fname, wat(module)).status_code == 201
    response = server.invoke(fname)
    assert response.status_code == 500, response.text
    error = response.json()["error"]
    assert error["type"] == "function_error"
    assert said in error["message"]
    assert "backtrace" not in error["message"]


def test_exit_zero_is_success(server: ServerProcess, fname: str) -> None:
    module = f'(module {PROC_EXIT} {MEMORY} (func (export "_start") (call $exit (i32.const 0))))'
    assert server.deploy(fname, wat(module)).status_code == 201
    assert server.invoke(fname).status_code == 200
