"""`wasmlet serve` says "ready" only once its socket is bound, and `--log-format`
chooses JSON or human-readable log lines."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from tests.support.server import free_port


def _serve(tmp_path: Path, port: int, *args: str) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WASMLET_")}
    env["WASMLET_WORKERS"] = "1"
    with (tmp_path / "stdout").open("wb") as stdout:
        return subprocess.Popen(
            [sys.executable, "-m", "wasmlet", "serve", "--port", str(port),
             "--data-dir", str(tmp_path / "data"), *args],
            stdout=stdout, stderr=subprocess.PIPE, env=env,
        )  # fmt: skip


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=30)
    if process.stderr is not None:
        process.stderr.close()


def test_ready_after_bind_and_console_log_lines(tmp_path: Path) -> None:
    port = free_port()
    process = _serve(tmp_path, port, "--log-format", "console")
    try:
        assert process.stderr is not None
        deadline = time.monotonic() + 90
        seen: list[str] = []
        while time.monotonic() < deadline:
            line = process.stderr.readline().decode()
            if not line:
                break
            seen.append(line)
            if "wasmlet ready" in line:
                with socket.create_connection(("127.0.0.1", port), timeout=5):
                    pass  # bound when it says so
                break
        assert any(line.startswith("wasmlet ready on http://127.0.0.1:") for line in seen), seen
        assert not any("wasmlet ready" in line for line in seen[:-1])  # said once, last
    finally:
        _stop(process)
    lines = [line for line in (tmp_path / "stdout").read_text().splitlines() if line.strip()]
    assert lines, "no log lines"
    for line in lines:
        try:
            json.loads(line)
        except ValueError:
            continue
        raise AssertionError(f"a JSON line with --log-format console: {line}")


def test_no_ready_when_the_port_is_taken(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        process = _serve(tmp_path, taken.getsockname()[1], "--log-format", "json")
        try:
            _, stderr = process.communicate(timeout=90)
        finally:
            _stop(process)
    assert process.returncode != 0, (process.returncode, stderr.decode())
    assert "wasmlet ready" not in stderr.decode(), stderr.decode()
    assert "address already in use" in stderr.decode()
    for line in (tmp_path / "stdout").read_text().splitlines():
        if line.strip():
            assert line.startswith("{"), line  # JSON lines when asked for JSON
            json.loads(line)
