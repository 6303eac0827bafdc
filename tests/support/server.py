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


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class ServerProcess:
    data_dir: Path
    env: dict[str, str]
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    lines: list[str] = field(default_factory=list)
    service_key: str = ""
    anon_key: str = ""
    _reader: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 90) -> None:
        env = {**os.environ, **self.env}
        env.pop("WASMLET_CONFIG_FILE", None)
        self.process = subprocess.Popen(
            [
                sys.executable, "-m", "wasmlet.cli.main", "serve",
                "--data-dir", str(self.data_dir), "--port", str(self.port),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
        )  # fmt: skip
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError("server exited:\n" + "\n".join(self.lines[-30:]))
            try:
                if httpx.get(self.url + "/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        else:
            self.stop()
            raise RuntimeError("server did not become healthy:\n" + "\n".join(self.lines[-30:]))
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
        parsed = []
        for line in list(self.lines):
            if line.startswith("{"):
                try:
                    parsed.append(json.loads(line))
                except json.JSONDecodeError:
                    continue
        return parsed

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
