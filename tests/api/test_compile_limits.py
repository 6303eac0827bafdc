"""Deploy-time compilation is bounded: time, memory, concurrency, what wasmtime refuses.

Compiling runs in a child process (runtime/compiler.py), so a module that is costly to
compile is refused with 400 and leaves the server's own memory where it was.
"""

from __future__ import annotations

import base64
import threading
from pathlib import Path

import httpx
import pytest

from tests.conftest import ServerFactory
from tests.support.build import wat
from tests.support.server import ServerProcess
from tests.support.wasmgen import many_functions
from wasmlet.runtime.restore import RESTORE_SUFFIX

MB = 1024 * 1024
START = '(memory (export "memory") 1) (func (export "_start"))'


def _rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS line")


def _server_pid(server: ServerProcess) -> int:
    assert server.process is not None
    return server.process.pid


def _artifacts(server: ServerProcess) -> set[str]:
    """The compiled artifacts, leaving out the whole compile of a module that runs restored
    (`runtime/restore.py`): another test's JavaScript function, compiled in the background
    whenever it comes, on the shared server."""
    modules = server.data_dir / "modules"
    restored = {
        path.name.removesuffix(RESTORE_SUFFIX) for path in modules.rglob(f"*{RESTORE_SUFFIX}")
    }
    return {
        path.name
        for path in modules.rglob("*.cwasm")
        if path.name.removesuffix(".cwasm") not in restored
    }


def _assert_stored_nothing(server: ServerProcess, name: str, artifacts: set[str]) -> None:
    got = httpx.get(f"{server.url}/functions/v1/functions/{name}", headers=server.service_headers())
    assert got.status_code == 404
    assert _artifacts(server) == artifacts


def test_module_too_costly_to_compile_is_refused_and_the_server_stays_small(
    server: ServerProcess, fname: str
) -> None:
    wasm = many_functions(200_000)
    rss_before = _rss_bytes(_server_pid(server))
    artifacts = _artifacts(server)
    response = server.post_deploy(
        {"name": fname, "wasm": base64.b64encode(wasm).decode()}, timeout_s=300
    )
    assert response.status_code in (400, 413), response.text
    error = response.json()["error"]
    assert error["type"] in ("invalid_wasm", "payload_too_large")
    assert "limit" in error["message"]
    assert _rss_bytes(_server_pid(server)) - rss_before < 200 * MB
    _assert_stored_nothing(server, fname, artifacts)
    assert server.deploy(fname, wat("hello")).status_code == 201
    assert server.invoke(fname).content == b"Hello, wasmlet!"


@pytest.mark.parametrize(
    ("module", "detail"),
    [
        (f"(module {START} (table 10000000 funcref))", "10000000"),
        ("(module " + START + " (table 1 funcref)" * 100 + ")", "tables count of 100"),
        ('(module (memory (export "memory") 1 1 shared) (func (export "_start")))', "shared"),
        (f"(module {START} (memory 1))", "memories count of 2"),
    ],
    ids=["huge-table", "100-tables", "shared-memory", "two-memories"],
)
def test_module_wasmtime_cannot_run_is_400_invalid_wasm_and_stores_nothing(
    server: ServerProcess, fname: str, module: str, detail: str
) -> None:
    artifacts = _artifacts(server)
    response = server.deploy(fname, wat(module))
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["type"] == "invalid_wasm"
    assert "cannot run it" in error["message"] and detail in error["message"]
    _assert_stored_nothing(server, fname, artifacts)


@pytest.mark.parametrize(
    ("module", "name"),
    [
        (
            '(module (memory (export "memory") 1) (func (export "_start") unreachable)'
            ' (global (export "__wasmlet_grow_refused") i32 (i32.const 1)))',
            "__wasmlet_grow_refused",
        ),
        (
            '(module (memory (export "memory") 1) (func (export "_start"))'
            ' (func (export "__wasmlet_anything") (drop (memory.grow (i32.const 1)))))',
            "__wasmlet_anything",
        ),
        (
            f'(module (import "__wasmlet_grow_refused" "g" (global i32)) {START})',
            "__wasmlet_grow_refused",
        ),
        (f'(module (import "wasmlet" "__wasmlet_log" (func)) {START})', "__wasmlet_log"),
    ],
    ids=["export-global", "export-func", "import-module", "import-name"],
)
def test_reserved_names_are_refused_at_deploy(
    server: ServerProcess, fname: str, module: str, name: str
) -> None:
    artifacts = _artifacts(server)
    response = server.deploy(fname, wat(module))
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["type"] == "invalid_wasm"
    assert name in error["message"] and "reserved" in error["message"]
    _assert_stored_nothing(server, fname, artifacts)


def test_compiles_beyond_the_queue_get_429(start_server: ServerFactory) -> None:
    wasm = base64.b64encode(many_functions(200_000)).decode()
    with start_server(WASMLET_COMPILE_CONCURRENCY="1", WASMLET_COMPILE_QUEUE="0") as server:
        answers: list[httpx.Response] = []

        def deploy(index: int) -> None:
            answers.append(server.post_deploy({"name": f"f{index}", "wasm": wasm}, timeout_s=300))

        threads = [threading.Thread(target=deploy, args=(i,)) for i in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        statuses = sorted(answer.status_code for answer in answers)
        assert set(statuses) <= {400, 429} and 429 in statuses, statuses
        busy = next(answer for answer in answers if answer.status_code == 429)
        assert busy.json()["error"]["type"] == "too_many_requests"
        assert busy.headers["retry-after"]
