"""`wasmlet logs` (with --follow) and `wasmlet top --once`, the real command against a
real server (this module's own: `top` lists every function of the server)."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.appdb import wait_until
from tests.support.build import wat
from tests.support.server import ServerProcess, running_server
from wasmlet.cli.exit_codes import ExitCode

LOG_LINES = wat((Path(__file__).parent.parent / "fixtures" / "log_lines.wat").read_text())


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    yield from running_server(tmp_path_factory.mktemp("cli-observe"))


def cli_env(server: ServerProcess) -> dict[str, str]:
    return {**os.environ, "WASMLET_URL": server.url, "WASMLET_KEY": server.service_key}


def run_cli(server: ServerProcess, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "wasmlet", *args],
        capture_output=True,
        text=True,
        env=cli_env(server),
        timeout=60,
        check=False,
    )


def logged(server: ServerProcess, name: str, count: int) -> None:
    wait_until(lambda: len(run_cli(server, "logs", name).stdout.splitlines()) >= count, 10, "lines")


def test_logs_prints_lines_and_filters_them(server: ServerProcess, fname: str) -> None:
    server.deploy(fname, LOG_LINES)
    assert server.invoke(fname, b"hello there").status_code == 200
    failed = server.invoke(fname, b"!going down")
    request_id = failed.headers["x-request-id"]
    logged(server, fname, 5)

    done = run_cli(server, "logs", fname)
    assert done.returncode == 0, done.stderr
    printed = done.stdout.splitlines()
    assert len(printed) == 5
    timestamp, level, rid, message = printed[1].split(None, 3)
    assert (level, message) == ("INFO", "hello there")
    assert timestamp.endswith("+00:00") and rid != request_id

    mine = run_cli(server, "logs", fname, "--request-id", request_id).stdout.splitlines()
    assert [line.split(None, 3)[3] for line in mine] == [
        "from the log call", "!going down", failed.json()["error"]["message"].join(
            ("500 function_error: ", "")
        ),
    ]  # fmt: skip
    errors = run_cli(server, "logs", fname, "--level", "error", "--json").stdout.splitlines()
    (error,) = [json.loads(line) for line in errors]
    assert (error["level"], error["source"], error["request_id"]) == (
        "error",
        "platform",
        request_id,
    )

    missing = run_cli(server, "logs", f"{fname}-nope")
    assert missing.returncode == ExitCode.NOT_FOUND
    assert "function_not_found" in missing.stderr


def test_logs_follow_prints_new_lines_until_interrupted(server: ServerProcess, fname: str) -> None:
    server.deploy(fname, LOG_LINES)
    server.invoke(fname, b"before")
    logged(server, fname, 2)
    with subprocess.Popen(
        [sys.executable, "-m", "wasmlet", "logs", fname, "--follow", "--interval", "0.1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cli_env(server),
    ) as follower:
        lines: queue.Queue[str] = queue.Queue()

        def read() -> None:
            assert follower.stdout is not None
            for line in follower.stdout:
                lines.put(line.rstrip("\n"))

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        try:
            seen = [lines.get(timeout=60) for _ in range(2)]  # what was there before
            assert seen[1].endswith("before")
            for payload in (b"first new", b"second new"):
                server.invoke(fname, payload)
            deadline = time.monotonic() + 60
            while not seen[-1].endswith("second new"):
                seen.append(lines.get(timeout=max(0.1, deadline - time.monotonic())))
            assert [line.split(None, 3)[3] for line in seen[2:]] == [
                "from the log call", "first new", "from the log call", "second new",
            ]  # fmt: skip
        finally:
            follower.send_signal(signal.SIGINT)
            try:
                code = follower.wait(60)
            finally:
                follower.kill()
            reader.join(5)
    assert code == 0


def test_top_once_renders_each_functions_figures(server: ServerProcess, fname: str) -> None:
    server.deploy(fname, LOG_LINES)
    for payload in (b"a", b"b", b"!c"):
        server.invoke(fname, payload)
    logged(server, fname, 7)
    done = run_cli(server, "top", "--once", "--minutes", "10")
    assert done.returncode == 0, done.stderr
    output = done.stdout
    assert output.startswith(f"wasmlet {server.url}  last 10 min")
    assert "workers 2/2" in output
    header = next(line for line in output.splitlines() if "FUNCTION" in line)
    assert header.split() == [
        "FUNCTION", "INVOCATIONS", "ERRORS", "ERROR", "%", "P50", "MS", "P99", "MS",
        "TIMEOUTS", "MEMORY", "BREAKER",
    ]  # fmt: skip
    (row,) = [line.split() for line in output.splitlines() if line.split()[:1] == [fname]]
    assert row[1:4] == ["3", "1", "33.3"]
    assert float(row[4]) <= float(row[5])
    assert row[6:] == ["0", "0", "closed"]
