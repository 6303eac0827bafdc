"""A real `wasmlet serve` in a subprocess, for end-to-end tests."""

from __future__ import annotations

import base64
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.support import zygote


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


PORT_ATTEMPTS = 3
READY = "wasmlet ready on "


class PortTaken(RuntimeError):
    """The server could not bind its port: another process took it first."""


@dataclass
class ServerProcess:
    data_dir: Path
    env: dict[str, str]
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | zygote.ForkedProcess | None = None
    lines: list[str] = field(default_factory=list)
    service_key: str = ""
    anon_key: str = ""
    _reader: threading.Thread | None = None
    _parsed: list[dict[str, Any]] = field(default_factory=list, repr=False)
    _parsed_lines: int = 0
    _parse_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 90) -> None:
        """Start and wait until ready; a port taken meanwhile (by a parallel test run,
        between `free_port` and the server's bind) is retried on a new port."""
        for _ in range(PORT_ATTEMPTS - 1):
            try:
                return self._start_once(timeout_s)
            except PortTaken:
                self.stop()
                self.port = free_port()
        return self._start_once(timeout_s)

    def _start_once(self, timeout_s: float) -> None:
        env = {**os.environ, **self.env}
        env.pop("WASMLET_CONFIG_FILE", None)
        first_line = len(self.lines)  # a restart keeps the lines of the runs before
        argv = [
            sys.executable, "-m", "wasmlet.cli.main", "serve",
            "--data-dir", str(self.data_dir), "--port", str(self.port),
        ]  # fmt: skip
        if zygote.usable(env):  # the same command, forked from a process that imported it
            self.process = zygote.fork_server(argv, env)
        else:
            self.process = subprocess.Popen(
                argv,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
            )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        # "wasmlet ready on ..." is printed once the socket is bound and the app started:
        # read from this process's own output, it cannot come from another server that
        # took the port (a /health poll could), and it needs no polling over HTTP.
        deadline = time.monotonic() + timeout_s
        while not any(line.startswith(READY) for line in self.lines[first_line:]):
            if self.process.poll() is not None:
                self._reader.join(5)
                output = "\n".join(self.lines[first_line:][-30:])
                if "address already in use" in output.lower():
                    del self.lines[first_line:]
                    raise PortTaken(output)
                raise RuntimeError("server exited:\n" + output)
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("server did not become ready:\n" + "\n".join(self.lines[-30:]))
            time.sleep(0.01)
        while True:  # ready, and then healthy (the scheduler has ticked, ...)
            try:
                health = httpx.get(self.url + "/health", timeout=5)
                if health.status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("server did not become healthy:\n" + "\n".join(self.lines[-30:]))
            time.sleep(0.02)
        keys_file = self.data_dir / "keys.json"  # absent when both keys are given
        keys = json.loads(keys_file.read_text()) if keys_file.exists() else {}
        self.service_key = self.env.get("WASMLET_SERVICE_KEY") or keys["service_key"]
        self.anon_key = self.env.get("WASMLET_ANON_KEY") or keys["anon_key"]

    def _read(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        for raw in self.process.stdout:
            self.lines.append(raw.decode("utf-8", "replace").rstrip("\n"))

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self._reader is not None:
            self._reader.join(2)
        if self.process.stdout is not None:
            self.process.stdout.close()

    def json_logs(self) -> list[dict[str, Any]]:
        """The JSON log lines so far, parsed; each line is parsed once (servers shared by a
        module or the session log thousands, and `wait_for_log` asks many times)."""
        with self._parse_lock:
            if len(self.lines) < self._parsed_lines:  # lines were dropped: parse again
                self._parsed, self._parsed_lines = [], 0
            end = len(self.lines)
            for line in self.lines[self._parsed_lines : end]:
                if line.startswith("{"):
                    try:
                        entry = json.loads(line)
                    except json.JSONDecodeError:
                        continue
                    if isinstance(entry, dict):
                        self._parsed.append(entry)
            self._parsed_lines = end
            return list(self._parsed)

    def wait_for_log(self, timeout_s: float = 30, **match: Any) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while True:
            for entry in self.json_logs():
                if all(entry.get(k) == v for k, v in match.items()):
                    return entry
            if time.monotonic() > deadline:
                raise AssertionError(f"no log line matching {match}")
            time.sleep(0.02)

    # --- HTTP helpers -------------------------------------------------------------

    def service_headers(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self.service_key}"}

    def anon_headers(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self.anon_key}"}

    def deploy(
        self,
        name: str,
        wasm: bytes,
        config: dict[str, Any] | None = None,
        triggers: list[dict[str, Any]] | None = None,
    ) -> httpx.Response:
        body: dict[str, Any] = {"name": name, "wasm": base64.b64encode(wasm).decode()}
        if config is not None:
            body["config"] = config
        if triggers is not None:
            body["triggers"] = triggers
        return self.post_deploy(body)

    def post_deploy(self, body: dict[str, Any], timeout_s: float = 60) -> httpx.Response:
        """POST a JSON deploy body with the service key."""
        return httpx.post(
            self.url + "/functions/v1/deploy",
            json=body,
            headers=self.service_headers(),
            timeout=timeout_s,
        )

    def invoke(
        self,
        name: str,
        payload: bytes = b"",
        headers: dict[str, str] | None = None,
        timeout_s: float = 60,
    ) -> httpx.Response:
        return httpx.post(
            f"{self.url}/functions/v1/invoke/{name}",
            content=payload,
            headers={**self.anon_headers(), **(headers or {})},
            timeout=timeout_s,
        )

    def metric(self, metric: str, /, **labels: str) -> float:
        """The value of one sample on /metrics (0 when absent)."""
        text = httpx.get(self.url + "/metrics", timeout=30).text
        return metric_value(text, metric, labels)


def metric_value(text: str, name: str, labels: dict[str, str]) -> float:
    from prometheus_client.parser import text_string_to_metric_families

    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return 0.0


def running_server(data_dir: Path, **env: str) -> Iterator[ServerProcess]:
    server = ServerProcess(data_dir, {"WASMLET_WORKERS": "2", **env})
    server.start()
    try:
        yield server
    finally:
        server.stop()
