"""`wasmlet dev` as a user runs it: from a fresh `init`, it starts its own server,
deploys, redeploys on save (the save-to-live latency is printed, not asserted: the
figure is bench/bench_dev.py's), keeps the old version on a syntax error and prints the
error's line and column, streams the log lines, and stops its server on Ctrl-C. The
CLI, run from a subfolder with no flags, environment or profile, finds that server and
its key through the nearest wasmlet.toml."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.support.server import ServerProcess, free_port
from wasmlet.cli.exit_codes import ExitCode

START_DEADLINE_S = 600  # server start and a first JavaScript deploy, on a loaded machine
SAVE_DEADLINE_S = 30


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WASMLET_")}
    return {**env, "XDG_CONFIG_HOME": str(home / ".config")}


@dataclass
class Dev:
    root: Path
    port: int
    process: subprocess.Popen[str]
    lines: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait_for(self, predicate: Callable[[str], bool], timeout_s: float, after: int = 0) -> str:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for line in self.lines[after:]:
                if predicate(line):
                    return line
            if self.process.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError("dev printed no such line:\n" + "\n".join(self.lines[-40:]))

    def body(self) -> str:
        response = httpx.post(f"{self.url}/functions/v1/invoke/hello", content=b"", timeout=30)
        return response.text


@pytest.fixture(scope="module")
def dev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dev]:
    root = tmp_path_factory.mktemp("devproject")
    env = _env(root)
    run = [sys.executable, "-m", "wasmlet"]
    done = subprocess.run([*run, "init"], cwd=root, env=env, capture_output=True, timeout=60,
                          check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    port = free_port()
    manifest = root / "wasmlet.toml"
    manifest.write_text(manifest.read_text().replace(":8787", f":{port}"))
    process = subprocess.Popen(
        [*run, "dev"], cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    running = Dev(root, port, process)
    reader = threading.Thread(target=running.read, daemon=True)
    reader.start()
    try:
        running.wait_for(lambda line: "deployed hello version 1" in line, START_DEADLINE_S)
        # said once the file watches are in place: a save from now on is seen
        running.wait_for(lambda line: "watching " in line, START_DEADLINE_S)
        yield running
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        reader.join(5)
        if process.stdout is not None:
            process.stdout.close()


def _save(path: Path, text: str) -> None:
    path.write_text(text)


def test_edit_under_dev_serves_the_new_body(dev: Dev) -> None:
    assert dev.body() == "Hello, wasmlet!"
    source = dev.root / "functions" / "hello" / "index.js"
    original = source.read_text()
    _save(source, original.replace("return `Hello, ${name}!`;", "return `Saved, ${name}!`;"))
    started = time.monotonic()
    deadline = started + SAVE_DEADLINE_S
    while dev.body() != "Saved, wasmlet!":
        assert time.monotonic() < deadline, "\n".join(
            [line for line in dev.lines if " INFO " not in line][-20:]
        )
        time.sleep(0.02)
    latency = time.monotonic() - started
    print(f"\nsave-to-live under `wasmlet dev` (JavaScript): {latency * 1000:.0f} ms")
    dev.wait_for(lambda line: "deployed hello version 2" in line, SAVE_DEADLINE_S)
    # the function's console.log, streamed by dev with its level
    dev.wait_for(lambda line: "hello INFO  hello wasmlet" in line, SAVE_DEADLINE_S)


def test_syntax_error_under_dev_keeps_the_old_version(dev: Dev) -> None:
    source = dev.root / "functions" / "hello" / "index.js"
    good = source.read_text()
    before = dev.body()
    mark = len(dev.lines)
    _save(source, good.replace("const name =", "const name = = "))
    line = dev.wait_for(lambda text: "error: hello:" in text, SAVE_DEADLINE_S, after=mark)
    assert "functions/hello/index.js:3:" in line and "SyntaxError" in line, line
    dev.wait_for(lambda text: "previous version" in text, SAVE_DEADLINE_S, after=mark)
    assert dev.body() == before
    _save(source, good)


def test_cli_from_a_subfolder_finds_the_dev_server_through_the_manifest(dev: Dev) -> None:
    nested = dev.root / "functions" / "hello"
    done = subprocess.run(
        [sys.executable, "-m", "wasmlet", "versions", "hello"], cwd=nested, env=_env(dev.root),
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "hello: live version" in done.stdout


def test_ctrl_c_stops_dev_and_its_server(dev: Dev) -> None:
    dev.process.send_signal(signal.SIGINT)
    assert dev.process.wait(60) == 0
    with pytest.raises(httpx.TransportError):
        httpx.get(dev.url + "/health", timeout=2)


def test_dev_refuses_a_server_it_has_no_key_for(server: ServerProcess, tmp_path: Path) -> None:
    """The README's `wasmlet serve` still running on the manifest's port: dev says what to
    do instead of failing every deploy with 401."""
    env = _env(tmp_path)
    run = [sys.executable, "-m", "wasmlet"]
    done = subprocess.run([*run, "init"], cwd=tmp_path, env=env, capture_output=True,
                          timeout=60, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    manifest = tmp_path / "wasmlet.toml"
    manifest.write_text(manifest.read_text().replace("http://127.0.0.1:8787", server.url))
    refused = subprocess.run([*run, "dev"], cwd=tmp_path, env=env, capture_output=True,
                             text=True, timeout=120, check=False)  # fmt: skip
    assert refused.returncode == ExitCode.USAGE, refused.stdout + refused.stderr
    assert f"a server already answers on {server.url} and dev has no key" in refused.stderr
    assert "--port" in refused.stderr
