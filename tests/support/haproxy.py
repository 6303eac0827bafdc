"""A real HAProxy in a child process, configured from deploy/cluster/'s template.

The binary comes from Debian's `haproxy` package (`scripts/ensure-test-tools` installs
it without starting the system service); this starts its own on free ports.
"""

from __future__ import annotations

import csv
import io
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.support.server import free_port

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "cluster"
RENDER = DEPLOY / "render_haproxy.py"


def haproxy_binary() -> str | None:
    found = shutil.which("haproxy")
    if found is None and Path("/usr/sbin/haproxy").is_file():
        found = "/usr/sbin/haproxy"
    return found


@dataclass
class Haproxy:
    binary: str
    workdir: Path
    nodes: list[str]
    check_interval: str = "500ms"
    port: int = field(default_factory=free_port)
    stats_port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def config(self) -> Path:
        return self.workdir / "haproxy.cfg"

    @property
    def log(self) -> Path:
        return self.workdir / "haproxy.log"

    def render(self) -> None:
        """The config, made by the shipped script from the shipped template."""
        rendered = subprocess.run(
            [
                sys.executable, str(RENDER),
                "--listen", f"127.0.0.1:{self.port}",
                "--stats", f"127.0.0.1:{self.stats_port}",
                "--check-interval", self.check_interval,
                *self.nodes,
            ],
            capture_output=True, text=True, timeout=30, check=True,
        )  # fmt: skip
        self.config.write_text(rendered.stdout)
        checked = subprocess.run(
            [self.binary, "-c", "-f", str(self.config)],
            capture_output=True, text=True, timeout=30, check=False,
        )  # fmt: skip
        assert checked.returncode == 0, checked.stdout + checked.stderr

    def start(self, timeout_s: float = 30) -> None:
        self.render()
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [self.binary, "-db", "-f", str(self.config)],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            )  # fmt: skip
        deadline = time.monotonic() + timeout_s
        while set(self.states().values()) != {"UP"}:
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("haproxy did not come up:\n" + self.log.read_text())
            time.sleep(0.05)

    def states(self) -> dict[str, str]:
        """Each backend server's state on the stats page ("UP", "DOWN", ...)."""
        try:
            text = httpx.get(f"http://127.0.0.1:{self.stats_port}/stats;csv", timeout=5).text
        except httpx.TransportError:
            return {}
        rows = csv.DictReader(io.StringIO(text.removeprefix("# ")))
        return {
            row["svname"]: row["status"].split(" ")[0]
            for row in rows
            if row["pxname"] == "wasmlet_nodes" and row["svname"] not in ("BACKEND", "FRONTEND")
        }

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
