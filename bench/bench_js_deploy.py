"""Deploy time and save-to-live of a JavaScript and a TypeScript function, WAT the floor.

    .venv/bin/python bench/bench_js_deploy.py [--samples N] [--json PATH]

Two real `wasmlet serve` processes, one after the other, each on a fresh data
directory: "before" with `WASMLET_COMPILE_RESTORE_SNAPSHOTS=false` (every JS/TS deploy
compiles the whole engine snapshot, as before runtime/restore.py) and "after" with the
default (the shared compiled engine plus the function's state; the whole module is
compiled in the background). In each, one function of each kind is redeployed
`--samples` times with a changed body (as an editor's save would), through the deploy
API, and each sample records:

- deploy_ms: the POST /functions/v1/deploy, until it answers 201;
- live_ms: from the start of the deploy until an invocation answers with the new body
  (save-to-live, without file watching);
- first_call_ms: that first invocation alone.

The first JS deploy on a fresh data directory compiles the engine's skeleton once (it
is then cached): it is reported apart, as "first", and not in the medians. WAT is the
floor: a module of a few hundred bytes, compiled per deploy in both servers. Prints the
medians, the after/before and JS/WAT ratios; the last line of stdout is the whole
report as JSON.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import wasmtime

from servers import free_port, running
from wasmlet.js.engine import ensure_engine

HELLO_WAT = """
(module
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "%s")
  (func (export "_start")
    (i32.store (i32.const 0) (i32.const 16))
    (i32.store (i32.const 4) (i32.const %d))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))
"""
HELLO_JS = 'export async function handler(req) {\n  return "%s";\n}\n'
HELLO_TS = (
    'import "jsr:@supabase/functions-js/edge-runtime.d.ts";\n\n'
    "interface Reply { text: string }\n\n"
    "export async function handler(req: Request): Promise<string> {\n"
    '  const reply: Reply = { text: "%s" };\n'
    "  return reply.text;\n"
    "}\n"
)
KINDS = ("wat", "js", "ts")
DEPLOY_TIMEOUT_S = 300
LIVE_DEADLINE_S = 60


def body_for(kind: str, text: str) -> dict[str, Any]:
    name = f"hello-{kind}"
    if kind == "wat":
        wasm = bytes(wasmtime.wat2wasm(HELLO_WAT % (text, len(text))))
        return {"name": name, "wasm": base64.b64encode(wasm).decode()}
    if kind == "js":
        return {"name": name, "runtime": "javascript", "source": HELLO_JS % text}
    return {
        "name": name,
        "runtime": "javascript",
        "source": HELLO_TS % text,
        "filename": "hello.ts",
    }


@contextlib.contextmanager
def server(workdir: Path, restore: bool) -> Iterator[Callable[..., httpx.Response]]:
    port = free_port()
    data_dir = workdir / "data"
    env = {k: v for k, v in os.environ.items() if not k.startswith("WASMLET_")}
    env["WASMLET_COMPILE_RESTORE_SNAPSHOTS"] = "true" if restore else "false"
    argv = [
        str(Path(sys.executable).with_name("wasmlet")), "serve", "--data-dir", str(data_dir),
        "--port", str(port), "--workers", "2",
    ]  # fmt: skip
    with running(argv, port, workdir / "wasmlet.log", env), httpx.Client(timeout=120) as http:
        keys = json.loads((data_dir / "keys.json").read_text("utf-8"))
        service = {"Authorization": f"Bearer {keys['service_key']}"}
        base = f"http://127.0.0.1:{port}/functions/v1"

        def call(path: str, **kwargs: Any) -> httpx.Response:
            return http.post(f"{base}{path}", headers=service, **kwargs)

        yield call


def sample(call: Callable[..., httpx.Response], kind: str, text: str) -> dict[str, float]:
    started = time.perf_counter()
    answer = call("/deploy", json=body_for(kind, text), timeout=DEPLOY_TIMEOUT_S)
    deployed = time.perf_counter()
    if answer.status_code not in (200, 201):
        raise RuntimeError(f"deploy of {kind} answered {answer.status_code}: {answer.text}")
    first_call_ms = None
    while True:
        asked = time.perf_counter()
        reply = call(f"/invoke/hello-{kind}", content=b"{}")
        if first_call_ms is None:
            first_call_ms = (time.perf_counter() - asked) * 1000
        if reply.status_code == 200 and reply.content == text.encode():
            break
        if time.perf_counter() - deployed > LIVE_DEADLINE_S:
            raise RuntimeError(f"{kind}: the new body never answered ({reply.status_code})")
        time.sleep(0.01)
    live = time.perf_counter()
    return {
        "deploy_ms": (deployed - started) * 1000,
        "live_ms": (live - started) * 1000,
        "first_call_ms": first_call_ms,
    }


def measure(restore: bool, samples: int) -> dict[str, Any]:
    label = "after" if restore else "before"
    with (
        tempfile.TemporaryDirectory(prefix=f"wasmlet-bench-deploy-{label}-") as tmp,
        server(Path(tmp), restore) as call,
    ):
        first = {kind: sample(call, kind, f"{kind} first") for kind in KINDS}
        runs: dict[str, list[dict[str, float]]] = {kind: [] for kind in KINDS}
        for index in range(samples):
            for kind in KINDS:
                runs[kind].append(sample(call, kind, f"{kind} edit {index:03d}"))
                print(f"{label} {kind} {index}: {runs[kind][-1]}", file=sys.stderr)
    medians = {
        kind: {
            field: statistics.median(run[field] for run in runs[kind])
            for field in ("deploy_ms", "live_ms", "first_call_ms")
        }
        for kind in KINDS
    }
    return {"first": first, "median": medians, "samples": runs}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=5, help="redeploys per kind [5]")
    parser.add_argument("--json", type=Path, help="also write the report to this file")
    args = parser.parse_args()
    ensure_engine()  # built or found before anything is timed
    report: dict[str, Any] = {"cpus": os.cpu_count(), "samples": args.samples}
    for restore in (False, True):
        report["after" if restore else "before"] = measure(restore, args.samples)
    print(f"{'':<8}{'kind':<6}{'first ms':>10}{'deploy p50':>12}{'live p50':>10}{'call p50':>10}")
    for label in ("before", "after"):
        for kind in KINDS:
            median, first = report[label]["median"][kind], report[label]["first"][kind]
            print(
                f"{label:<8}{kind:<6}{first['live_ms']:>10.0f}{median['deploy_ms']:>12.0f}"
                f"{median['live_ms']:>10.0f}{median['first_call_ms']:>10.1f}"
            )
    ratios: dict[str, float] = {}
    for kind in ("js", "ts"):
        after, before = report["after"]["median"][kind], report["before"]["median"][kind]
        floor = report["after"]["median"]["wat"]
        ratios[f"{kind} live after/before"] = after["live_ms"] / before["live_ms"]
        ratios[f"{kind} live after / wat live"] = after["live_ms"] / floor["live_ms"]
    report["ratios"] = ratios
    print()
    for name, value in ratios.items():
        print(f"{name:<28}{value:>8.2f}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, separators=(",", ":")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
