"""Per-invocation latency of a JavaScript hello beside a WAT hello, in the same run.

    .venv/bin/python bench/bench_js.py [--quick] [--json PATH] [--workers N]
                                       [--requests N] [--seconds S]

- direct: wasmlet's `Executor.run` in this process, for the packaged JS module (the
  engine snapshot with the function loaded) and for examples/wat/hello.wat, in
  alternating rounds, with the request metadata the invoker sets;
- over HTTP: one real `wasmlet serve` with both deployed (the JS one from source,
  through the deploy API), loaded by bench/loadgen.py at concurrency 1 and 16,
  interleaved;
- deploy: what packaging the JS source costs (engine start, prelude, compile, top
  level, snapshot), which is also what each call would pay without the snapshot.

Prints a table, the JS/WAT ratios and the aim (JS hello p50 under 1.5 ms direct);
the last line of stdout is the whole report as JSON.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from functools import partial
from importlib.metadata import version
from pathlib import Path
from typing import Any, NoReturn

import httpx
import wasmtime

from bench_invoke import Budget, Profile, bench_job, summarize, time_calls
from servers import free_port, running
from wasmlet.js.package import JavaScriptPackager
from wasmlet.runtime.compiler import CompiledModule, ModuleCompiler
from wasmlet.runtime.executor import Executor
from wasmlet.runtime.outcome import Job

BENCH_DIR = Path(__file__).resolve().parent
HELLO_WAT = BENCH_DIR.parent / "examples" / "wat" / "hello.wat"
HELLO_JS = 'export async function handler(req) {\n  return "Hello, wasmlet!";\n}\n'
EXPECTED = b"Hello, wasmlet!"
PAYLOAD = b'{"name":"bench"}'
ROUNDS = 5
CONCURRENCIES = (1, 16)
DEPLOY_SAMPLES = 5
AIM_DIRECT_P50_MS = 1.5
STRETCH_DIRECT_P50_MS = 0.4
MB = 1024 * 1024
ENV = {
    "WASMLET_FUNCTION": "hello",
    "WASMLET_VERSION": "1",
    "WASMLET_REQUEST_ID": "bench",
    "WASMLET_TRIGGER": "http",
    "WASMLET_HTTP_METHOD": "POST",
    "WASMLET_HTTP_PATH": "/",
    "WASMLET_HTTP_QUERY": "",
    "WASMLET_HTTP_HEADERS": json.dumps(
        {"host": "127.0.0.1:8787", "content-type": "application/json", "content-length": "16"}
    ),
}


FULL = Profile("full", Budget(10_000, 8.0), Budget(2_000, 8.0), warmup=300)
QUICK = Profile("quick", Budget(1_000, 2.0), Budget(300, 3.0), warmup=50)


def _job(module: CompiledModule) -> Job:
    return bench_job(module, PAYLOAD, dict(ENV))


def measure_direct(modules: dict[str, CompiledModule], budget: Budget) -> dict[str, Any]:
    jobs = {name: _job(module) for name, module in modules.items()}
    with Executor() as executor:
        for name, job in jobs.items():
            outcome = executor.run(job)
            if not outcome.ok or outcome.stdout != EXPECTED:
                raise RuntimeError(f"{name} gave {outcome}")
        latencies: dict[str, list[int]] = {name: [] for name in jobs}
        elapsed = dict.fromkeys(jobs, 0.0)
        for job in jobs.values():  # warm-up
            time_calls(partial(executor.run, job), Budget(min(300, budget.requests), 1.0))
        per_round = Budget(budget.requests // ROUNDS, budget.seconds / ROUNDS)
        for round_ in range(ROUNDS):
            order = list(jobs) if round_ % 2 == 0 else list(reversed(jobs))
            for name in order:
                job = jobs[name]
                spent, took = time_calls(partial(executor.run, job), per_round)
                latencies[name] += took
                elapsed[name] += spent
    return {name: summarize(latencies[name], elapsed[name]) for name in jobs}


def measure_deploy(packager: JavaScriptPackager) -> dict[str, Any]:
    """Packaging time (ms): the engine's start plus loading the function, once."""
    samples = []
    for _ in range(DEPLOY_SAMPLES):
        started = time.perf_counter()
        packager.package(HELLO_JS)
        samples.append((time.perf_counter() - started) * 1000)
    return {"package_ms_median": statistics.median(samples), "samples_ms": samples}


@contextlib.contextmanager
def server(wat_wasm: bytes, workdir: Path, workers: int) -> Iterator[tuple[int, int, str]]:
    """A `wasmlet serve` with `hello-wat` and `hello-js` deployed: (pid, port, anon key)."""
    port = free_port()
    data_dir = workdir / "data"
    env = {k: v for k, v in os.environ.items() if not k.startswith("WASMLET_")}
    argv = [
        str(Path(sys.executable).with_name("wasmlet")), "serve", "--data-dir", str(data_dir),
        "--port", str(port), "--workers", str(workers),
    ]  # fmt: skip
    with running(argv, port, workdir / "wasmlet.log", env) as process:
        keys = json.loads((data_dir / "keys.json").read_text("utf-8"))
        service = {"Authorization": f"Bearer {keys['service_key']}"}
        bodies = [
            {"name": "hello-wat", "wasm": base64.b64encode(wat_wasm).decode()},
            {"name": "hello-js", "runtime": "javascript", "source": HELLO_JS},
        ]
        for body in bodies:
            response = httpx.post(
                f"http://127.0.0.1:{port}/functions/v1/deploy",
                json=body,
                headers=service,
                timeout=120,
            )
            if response.status_code not in (200, 201):
                raise RuntimeError(f"deploy answered {response.status_code}: {response.text}")
        _wait_compiled_whole(data_dir)
        for name in ("hello-wat", "hello-js"):
            answer = httpx.post(
                f"http://127.0.0.1:{port}/functions/v1/invoke/{name}",
                content=PAYLOAD,
                headers={"Authorization": f"Bearer {keys['anon_key']}"},
            )
            if answer.content != EXPECTED:
                raise RuntimeError(f"{name} answered {answer.status_code}: {answer.text}")
        yield process.pid, port, keys["anon_key"]


def _wait_compiled_whole(data_dir: Path, deadline_s: float = 600) -> None:
    """Until each module deployed as a restore artifact is compiled whole (the background
    compile, runtime/restore.py): the steady state is what is measured."""
    deadline = time.monotonic() + deadline_s
    while any(not path.with_suffix(".cwasm").is_file() for path in data_dir.rglob("*.restore")):
        if time.monotonic() > deadline:
            raise RuntimeError("the background compile did not finish")
        time.sleep(0.2)


def load(
    port: int, pid: int, anon: str, name: str, concurrency: int, budget: Budget, warmup: int
) -> dict[str, Any]:
    argv = [
        sys.executable, str(BENCH_DIR / "loadgen.py"), "--port", str(port),
        "--path", f"/functions/v1/invoke/{name}", "--body", PAYLOAD.decode(),
        "--concurrency", str(concurrency), "--requests", str(budget.requests),
        "--seconds", str(budget.seconds), "--warmup", str(warmup), "--cpu-of", str(pid),
        "--header", f"Authorization: Bearer {anon}", "--header", "Content-Type: application/json",
    ]  # fmt: skip
    done = subprocess.run(argv, capture_output=True, check=False, timeout=3 * budget.seconds + 120)
    if done.returncode != 0:
        raise RuntimeError(f"loadgen failed ({done.returncode}): {done.stderr.decode()[-2000:]}")
    raw = json.loads(done.stdout.decode().splitlines()[-1])
    result = summarize(raw["latencies_ns"], raw["elapsed_s"])
    cpu, calls = raw["target_cpu_s"], result["n"]
    result.update(
        function=name,
        concurrency=concurrency,
        errors=raw["sent"] - result["n"],
        worker_cpu_us_per_call=cpu["children"] / calls * 1e6 if cpu and calls else None,
    )
    return result


def measure_http(
    wat_wasm: bytes, workdir: Path, workers: int, profile: Profile
) -> list[dict[str, Any]]:
    results = []
    with server(wat_wasm, workdir, workers) as (pid, port, anon):
        for name in ("hello-wat", "hello-js"):
            load(port, pid, anon, name, 16, Budget(profile.warmup, profile.http.seconds), 0)
        for concurrency in CONCURRENCIES:
            for name in ("hello-wat", "hello-js"):
                results.append(
                    load(port, pid, anon, name, concurrency, profile.http, 2 * concurrency)
                )
    return results


def _ratio(top: float | None, bottom: float | None) -> float | None:
    return top / bottom if top is not None and bottom else None


def _num(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small budgets, for a smoke run")
    parser.add_argument("--json", type=Path, help="also write the report to this file")
    parser.add_argument("--workers", type=int, default=2, help="wasmlet worker processes [2]")
    parser.add_argument("--requests", type=int, help="requests per HTTP phase")
    parser.add_argument("--seconds", type=float, help="time cap per HTTP phase")
    args = parser.parse_args()
    profile = QUICK if args.quick else FULL
    if args.requests or args.seconds:
        profile = Profile(
            profile.name,
            profile.in_process,
            Budget(args.requests or profile.http.requests, args.seconds or profile.http.seconds),
            profile.warmup,
        )
    signal.signal(signal.SIGTERM, _exit_on_sigterm)

    packager = JavaScriptPackager()
    packager.engine()  # build or find the engine before anything is timed
    with tempfile.TemporaryDirectory(prefix="wasmlet-bench-js-") as tmp:
        workdir = Path(tmp)
        # Whole modules: what a function runs once its background compile is done.
        compiler = ModuleCompiler(workdir / "cache", restore=False)
        wat_wasm = bytes(wasmtime.wat2wasm(HELLO_WAT.read_text()))
        js_wasm = packager.package(HELLO_JS).wasm
        started = time.perf_counter()
        modules = {"wat": compiler.compile(wat_wasm)}
        wat_compile_ms = (time.perf_counter() - started) * 1000
        started = time.perf_counter()
        modules["js"] = compiler.compile(js_wasm)
        js_compile_ms = (time.perf_counter() - started) * 1000
        print(f"direct: {profile.in_process}", file=sys.stderr)
        direct = measure_direct(modules, profile.in_process)
        deploy = measure_deploy(packager)
        deploy.update(
            instrument_and_compile_ms={"wat": wat_compile_ms, "js": js_compile_ms},
            module_bytes={"wat": len(wat_wasm), "js": len(js_wasm)},
        )
        print(f"over HTTP: {profile.http} per phase, {args.workers} workers", file=sys.stderr)
        http = measure_http(wat_wasm, workdir, args.workers, profile)

    print(f"{'function':<12}{'mode':<12}{'n':>7}{'err':>5}{'p50 ms':>9}{'p99 ms':>9}"
          f"{'max ms':>9}{'req/s':>9}{'wrk us/call':>13}")  # fmt: skip
    for name in ("wat", "js"):
        stats = direct[name]
        print(
            f"{'hello-' + name:<12}{'direct':<12}{stats['n']:>7}{0:>5}"
            f"{_num(stats['p50_ms'], '.3f'):>9}{_num(stats['p99_ms'], '.3f'):>9}"
            f"{_num(stats['max_ms'], '.2f'):>9}{_num(stats['rps'], '.0f'):>9}"
        )
    for row in http:
        print(
            f"{row['function']:<12}{'c=' + str(row['concurrency']):<12}{row['n']:>7}"
            f"{row['errors']:>5}{_num(row['p50_ms'], '.3f'):>9}{_num(row['p99_ms'], '.3f'):>9}"
            f"{_num(row['max_ms'], '.2f'):>9}{_num(row['rps'], '.0f'):>9}"
            f"{_num(row['worker_cpu_us_per_call'], '.0f'):>13}"
        )

    def http_row(name: str, concurrency: int) -> dict[str, Any]:
        return next(r for r in http if r["function"] == name and r["concurrency"] == concurrency)

    ratios = {
        "direct p50 js/wat": _ratio(direct["js"]["p50_ms"], direct["wat"]["p50_ms"]),
        "direct p99 js/wat": _ratio(direct["js"]["p99_ms"], direct["wat"]["p99_ms"]),
        "http c=1 p50 js/wat": _ratio(
            http_row("hello-js", 1)["p50_ms"], http_row("hello-wat", 1)["p50_ms"]
        ),
        "http c=16 req/s js/wat": _ratio(
            http_row("hello-js", 16)["rps"], http_row("hello-wat", 16)["rps"]
        ),
    }
    js_p50 = direct["js"]["p50_ms"]
    aims = {
        "js direct p50 < 1.5 ms": js_p50 is not None and js_p50 < AIM_DIRECT_P50_MS,
        "stretch: js direct p50 < 0.4 ms": js_p50 is not None and js_p50 < STRETCH_DIRECT_P50_MS,
    }
    print()
    for name, value in ratios.items():
        print(f"{name:<28}{_num(value, '.2f'):>8}")
    print(f"{'js packaging (deploy) ms':<28}{deploy['package_ms_median']:>8.2f}")
    compile_ms = deploy["instrument_and_compile_ms"]
    print(f"{'instrument+compile ms':<28}{compile_ms['js']:>8.0f}  (wat {compile_ms['wat']:.0f})")
    for name, met in aims.items():
        print(f"{name:<36}{'met' if met else 'MISSED'}")
    report = {
        "profile": profile.name,
        "cpus": os.cpu_count(),
        "workers": args.workers,
        "wasmtime": version("wasmtime"),
        "direct": direct,
        "http": http,
        "deploy": deploy,
        "ratios": ratios,
        "aims": aims,
    }
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, separators=(",", ":")))
    return 0


def _exit_on_sigterm(signum: int, frame: object) -> NoReturn:
    raise SystemExit(128 + signum)


if __name__ == "__main__":
    sys.exit(main())
