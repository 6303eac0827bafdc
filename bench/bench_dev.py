"""Save-to-live under `wasmlet dev`, and deploy time of a JS function against the WAT
floor, in the same run.

    .venv/bin/python bench/bench_dev.py [--edits 20] [--deploys 5] [--json PATH]

A fresh project (`wasmlet init`, `wasmlet new greet --lang ts`) runs under a real
`wasmlet dev` (its own server). For the JavaScript function, then the TypeScript one,
each of `--edits` saves changes the returned text; save-to-live is the time from the
file write to the first response with the new body (one keep-alive client polling).
Then, on the same server, `--deploys` deploy calls of a JavaScript hello (a new source
each time) and of a WAT hello (a new module each time: the floor, nothing but the
route, validation, compile and store). Prints p50/max and the JS/WAT deploy ratio;
the last line of stdout is the whole report as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import wasmtime

from servers import free_port
from wasmlet.client import WasmletClient

START_DEADLINE_S = 900.0
SAVE_DEADLINE_S = 60.0
POLL_S = 0.005


def _wat(text: str) -> bytes:
    data = text.encode("ascii")
    escaped = "".join(f"\\{byte:02x}" for byte in data)
    return bytes(
        wasmtime.wat2wasm(
            f"""(module
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "\\10\\00\\00\\00\\{len(data):02x}\\00\\00\\00")
  (data (i32.const 16) "{escaped}")
  (func (export "_start")
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))"""
        )
    )


class DevProcess:
    def __init__(self, root: Path, env: dict[str, str]) -> None:
        self.lines: list[str] = []
        self.process = subprocess.Popen(
            [sys.executable, "-m", "wasmlet", "dev"], cwd=root, env=env, text=True,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )  # fmt: skip
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait_for(self, text: str, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while not any(text in line for line in self.lines):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("dev did not print " + repr(text) + ":\n" + "\n".join(self.lines))
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._reader.join(5)


def _save_to_live(
    http: httpx.Client, url: str, source: Path, name: str, template: str, edits: int
) -> list[float]:
    samples = []
    for n in range(edits):
        body = f"edit {n} of {name}"
        source.write_text(template.replace("@BODY@", body))
        started = time.perf_counter()
        deadline = started + SAVE_DEADLINE_S
        while http.post(f"{url}/functions/v1/invoke/{name}", content=b"").text != body:
            if time.perf_counter() > deadline:
                raise SystemExit(f"{name}: edit {n} not live after {SAVE_DEADLINE_S}s")
            time.sleep(POLL_S)
        samples.append((time.perf_counter() - started) * 1000)
        time.sleep(0.3)  # the next save is a new batch for the watcher
    return samples


def _deploy_times(client: WasmletClient, deploys: int) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {"js": [], "wat": []}
    for n in range(deploys):
        started = time.perf_counter()
        client.deploy_javascript(
            "bench-deploy-js", f'export async function handler() {{ return "js {n}"; }}\n'
        )
        times["js"].append((time.perf_counter() - started) * 1000)
        module = _wat(f"wat {n} {time.time_ns()}")
        started = time.perf_counter()
        client.deploy("bench-deploy-wat", module)
        times["wat"].append((time.perf_counter() - started) * 1000)
    return times


def _stats(samples: list[float]) -> dict[str, float]:
    return {"p50_ms": statistics.median(samples), "max_ms": max(samples), "n": len(samples)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--edits", type=int, default=20)
    parser.add_argument("--deploys", type=int, default=5)
    parser.add_argument("--json", default=None, help="also write the report here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="wasmlet-bench-dev-") as folder:
        root = Path(folder)
        env = {k: v for k, v in os.environ.items() if not k.startswith("WASMLET_")}
        env["XDG_CONFIG_HOME"] = str(root / ".config")
        run = [sys.executable, "-m", "wasmlet"]
        for argv in (["init"], ["new", "greet", "--lang", "ts"]):
            subprocess.run([*run, *argv], cwd=root, env=env, check=True, capture_output=True)
        port = free_port()
        manifest = root / "wasmlet.toml"
        manifest.write_text(manifest.read_text().replace(":8787", f":{port}"))
        url = f"http://127.0.0.1:{port}"
        dev = DevProcess(root, env)
        try:
            dev.wait_for("deployed greet version 1", START_DEADLINE_S)
            js_template = 'export async function handler() {\n  return "@BODY@";\n}\n'
            ts_template = (
                "export async function handler(req: Request): Promise<string> {\n"
                '  const body: string = "@BODY@";\n  return body;\n}\n'
            )
            with httpx.Client(timeout=30) as http:
                js = _save_to_live(http, url, root / "functions/hello/index.js", "hello",
                                   js_template, args.edits)  # fmt: skip
                ts = _save_to_live(http, url, root / "functions/greet/index.ts", "greet",
                                   ts_template, args.edits)  # fmt: skip
            key = json.loads((root / ".wasmlet/dev/keys.json").read_text())["service_key"]
            with WasmletClient(url, key, timeout_s=600) as client:
                deploys = _deploy_times(client, args.deploys)
        finally:
            dev.stop()
    report: dict[str, Any] = {
        "save_to_live": {"js": _stats(js), "ts": _stats(ts)},
        "deploy": {"js": _stats(deploys["js"]), "wat": _stats(deploys["wat"])},
    }
    ratio = report["deploy"]["js"]["p50_ms"] / report["deploy"]["wat"]["p50_ms"]
    report["deploy"]["js_over_wat_p50"] = ratio
    rows = [
        (f"save-to-live {lang}", report["save_to_live"][lang], "edits") for lang in ("js", "ts")
    ]
    rows += [(f"deploy {kind}", report["deploy"][kind], "deploys") for kind in ("js", "wat")]
    for label, s, unit in rows:
        print(
            f"{label + ':':<18}p50 {s['p50_ms']:.0f} ms  max {s['max_ms']:.0f} ms  "
            f"({s['n']} {unit})"
        )
    print(f"deploy JS / WAT (p50): {ratio:.1f}x")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
    print(json.dumps(report))


if __name__ == "__main__":
    main()
