"""Invocation latency and throughput of wasmlet, next to the floors it is built on.

    .venv/bin/python bench/bench_invoke.py [--quick] [--json PATH] [--workers N]
                                           [--requests N] [--seconds S]

In one run, on examples/wat/hello.wat:

- direct: wasmlet's `Executor.run` in this process (fresh store and instance per call);
- F1: the cheapest wasmtime-py path for the same compiled module (bench/floor.py);
- wasmlet over HTTP: a real `wasmlet serve` subprocess, sequentially and at
  concurrency 16 and 64;
- F2: a bare Starlette app running the F1 path inline under uvicorn (bench/bare_app.py),
  loaded by the same generator (bench/loadgen.py) at the same concurrencies.

Prints a table and the ratios against their aims; the last line of stdout is the
whole report as JSON. See bench/README.md for how to read it.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from importlib.metadata import version
from pathlib import Path
from typing import Any, NoReturn

import httpx
import wasmtime

from bare_app import INVOKE_PATH
from floor import FloorRunner
from servers import free_port, running
from wasmlet.runtime.compiler import CompiledModule, ModuleCompiler
from wasmlet.runtime.executor import Executor
from wasmlet.runtime.outcome import Job

BENCH_DIR = Path(__file__).resolve().parent
HELLO_WAT = BENCH_DIR.parent / "examples" / "wat" / "hello.wat"
EXPECTED = b"Hello, wasmlet!"
PAYLOAD = b'{"name":"bench"}'
CONCURRENCIES = (1, 16, 64)
IN_PROCESS_ROUNDS = 5
MB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Budget:
    """A phase ends after `requests` calls or `seconds`, whichever comes first."""

    requests: int
    seconds: float


@dataclass(frozen=True, slots=True)
class Profile:
    name: str
    in_process: Budget
    http: Budget
    warmup: int


FULL = Profile("full", Budget(20_000, 8.0), Budget(3_000, 10.0), warmup=500)
QUICK = Profile("quick", Budget(2_000, 2.0), Budget(500, 3.0), warmup=100)


@dataclass(frozen=True, slots=True)
class Aim:
    name: str
    value: float | None
    limit: float
    at_least: bool

    @property
    def met(self) -> bool | None:
        if self.value is None:
            return None
        return self.value >= self.limit if self.at_least else self.value <= self.limit


@dataclass(frozen=True, slots=True)
class Target:
    name: str
    pid: int
    port: int
    headers: list[str]


def summarize(latencies_ns: list[int], elapsed_s: float) -> dict[str, Any]:
    ordered = sorted(latencies_ns)

    def pct(q: float) -> float | None:
        if not ordered:
            return None
        return ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)] / 1e6

    return {
        "n": len(ordered),
        "p50_ms": pct(0.50),
        "p90_ms": pct(0.90),
        "p99_ms": pct(0.99),
        "max_ms": ordered[-1] / 1e6 if ordered else None,
        "mean_ms": sum(ordered) / len(ordered) / 1e6 if ordered else None,
        "rps": len(ordered) / elapsed_s if elapsed_s > 0 else None,
    }


# -- in process ---------------------------------------------------------------------


def bench_job(module: CompiledModule, stdin: bytes, env: dict[str, str] | None = None) -> Job:
    """A job as the invoker builds one, with the default limits."""
    return Job(
        invocation_id="bench",
        module_key=module.key,
        module_path=str(module.path),
        stdin=stdin,
        env=env or {},
        argv=("hello",),
        timeout_ms=10_000,
        memory_limit_bytes=128 * MB,
        stdout_limit=6 * MB,
        stderr_limit=64 * 1024,
    )


def measure_in_process(module: CompiledModule, budget: Budget) -> dict[str, dict[str, Any]]:
    """Direct (wasmlet's executor) and F1 (the floor), in alternating rounds."""
    job = bench_job(module, PAYLOAD)
    floor = FloorRunner(str(module.path))
    with Executor() as executor:
        outcome = executor.run(job)
        if not outcome.ok or outcome.stdout != EXPECTED:
            raise RuntimeError(f"direct run gave {outcome}")
        if floor.run(PAYLOAD) != EXPECTED:
            raise RuntimeError("the floor did not print the expected text")
        calls: dict[str, Callable[[], object]] = {
            "direct": lambda: executor.run(job),
            "floor_f1": lambda: floor.run(PAYLOAD),
        }
        latencies: dict[str, list[int]] = {name: [] for name in calls}
        elapsed = dict.fromkeys(calls, 0.0)
        for call in calls.values():  # warm-up
            time_calls(call, Budget(min(500, budget.requests), 1.0))
        per_round = Budget(budget.requests // IN_PROCESS_ROUNDS, budget.seconds / IN_PROCESS_ROUNDS)
        for round_ in range(IN_PROCESS_ROUNDS):
            order = list(calls) if round_ % 2 == 0 else list(reversed(calls))
            for name in order:
                spent, took = time_calls(calls[name], per_round)
                latencies[name] += took
                elapsed[name] += spent
    return {name: summarize(latencies[name], elapsed[name]) for name in calls}


def time_calls(call: Callable[[], object], budget: Budget) -> tuple[float, list[int]]:
    latencies: list[int] = []
    clock = time.perf_counter_ns
    started = clock()
    stop_at = started + int(budget.seconds * 1e9)
    for _ in range(budget.requests):
        before = clock()
        call()
        after = clock()
        latencies.append(after - before)
        if after >= stop_at:
            break
    return (clock() - started) / 1e9, latencies


# -- over HTTP ----------------------------------------------------------------------


@contextlib.contextmanager
def http_targets(
    module: CompiledModule, wasm: bytes, workdir: Path, workers: int
) -> Iterator[list[Target]]:
    """The bare app and a `wasmlet serve` with hello deployed, both listening."""
    bare_port, wasmlet_port = free_port(), free_port()
    data_dir = workdir / "data"
    env = {k: v for k, v in os.environ.items() if not k.startswith("WASMLET_")}
    bare_argv = [sys.executable, str(BENCH_DIR / "bare_app.py"), "--port", str(bare_port)]
    wasmlet_argv = [
        str(Path(sys.executable).with_name("wasmlet")), "serve", "--data-dir", str(data_dir),
        "--port", str(wasmlet_port), "--workers", str(workers),
    ]  # fmt: skip
    with (
        running(
            [*bare_argv, "--module", str(module.path)], bare_port, workdir / "bare.log"
        ) as bare_app,
        running(wasmlet_argv, wasmlet_port, workdir / "wasmlet.log", env) as server,
    ):
        keys = json.loads((data_dir / "keys.json").read_text("utf-8"))
        _deploy(wasmlet_port, keys["service_key"], wasm)
        # Same headers for both, so the requests are byte for byte the same size.
        headers = [f"Authorization: Bearer {keys['anon_key']}", "Content-Type: application/json"]
        bare = Target("bare app (F2)", bare_app.pid, bare_port, headers)
        targets = [bare, Target("wasmlet", server.pid, wasmlet_port, headers)]
        for target in targets:
            _check_invoke(target)
        yield targets


def _deploy(port: int, service_key: str, wasm: bytes) -> None:
    response = httpx.post(
        f"http://127.0.0.1:{port}/functions/v1/deploy",
        json={"name": "hello", "wasm": base64.b64encode(wasm).decode()},
        headers={"Authorization": f"Bearer {service_key}"},
        timeout=60,
    )
    if response.status_code not in (200, 201):
        raise RuntimeError(f"deploy answered {response.status_code}: {response.text}")


def _check_invoke(target: Target) -> None:
    headers = dict(h.split(": ", 1) for h in target.headers)
    response = httpx.post(
        f"http://127.0.0.1:{target.port}{INVOKE_PATH}", content=PAYLOAD, headers=headers
    )
    if response.status_code != 200 or response.content != EXPECTED:
        raise RuntimeError(f"{target.name} answered {response.status_code}: {response.text}")


def load(target: Target, concurrency: int, budget: Budget, warmup: int) -> dict[str, Any]:
    """Run bench/loadgen.py against `target`; its result, with the target's CPU per call."""
    argv = [
        sys.executable, str(BENCH_DIR / "loadgen.py"), "--port", str(target.port),
        "--path", INVOKE_PATH, "--body", PAYLOAD.decode(), "--concurrency", str(concurrency),
        "--requests", str(budget.requests), "--seconds", str(budget.seconds),
        "--warmup", str(warmup), "--cpu-of", str(target.pid),
    ]  # fmt: skip
    for header in target.headers:
        argv += ["--header", header]
    done = subprocess.run(argv, capture_output=True, check=False, timeout=3 * budget.seconds + 120)
    if done.returncode != 0:
        raise RuntimeError(f"loadgen failed ({done.returncode}): {done.stderr.decode()[-2000:]}")
    raw = json.loads(done.stdout.decode().splitlines()[-1])
    result = summarize(raw["latencies_ns"], raw["elapsed_s"])
    result.update(
        target=target.name,
        concurrency=concurrency,
        sent=raw["sent"],
        statuses=raw["statuses"],
        failures=raw["failures"],
        elapsed_s=raw["elapsed_s"],
        client_cpu_share=raw["client_cpu_s"] / raw["elapsed_s"] if raw["elapsed_s"] else None,
    )
    cpu, calls = raw["target_cpu_s"], result["n"]
    result.update(
        server_cpu_us_per_call=cpu["own"] / calls * 1e6 if cpu and calls else None,
        worker_cpu_us_per_call=cpu["children"] / calls * 1e6 if cpu and calls else None,
    )
    return result


def measure_http(targets: list[Target], profile: Profile) -> list[dict[str, Any]]:
    for target in targets:
        load(target, 16, Budget(profile.warmup, profile.http.seconds), warmup=0)
    results = []
    for concurrency in CONCURRENCIES:
        for target in targets:  # interleaved, so drift on a shared machine hits both
            results.append(load(target, concurrency, profile.http, warmup=2 * concurrency))
    return results


# -- report -------------------------------------------------------------------------


def aims(in_process: dict[str, dict[str, Any]], http: list[dict[str, Any]]) -> list[Aim]:
    def http_at(name: str, concurrency: int) -> dict[str, Any]:
        return next(r for r in http if r["target"] == name and r["concurrency"] == concurrency)

    wasmlet16, bare16, wasmlet64 = (
        http_at("wasmlet", 16), http_at("bare app (F2)", 16), http_at("wasmlet", 64)
    )  # fmt: skip
    wasmlet1, bare1 = http_at("wasmlet", 1), http_at("bare app (F2)", 1)
    return [  # issue 13's aims
        Aim(
            "direct p50 / F1 p50",
            _ratio(in_process["direct"]["p50_ms"], in_process["floor_f1"]["p50_ms"]),
            1.2,
            at_least=False,
        ),
        Aim("wasmlet rps / F2 rps at c=16", _ratio(wasmlet16["rps"], bare16["rps"]), 1.0, True),
        Aim("wasmlet p50 / F2 p50 at c=1", _ratio(wasmlet1["p50_ms"], bare1["p50_ms"]), 1.5, False),
        Aim(
            "wasmlet p99 / p50 at c=64", _ratio(wasmlet64["p99_ms"], wasmlet64["p50_ms"]), 5, False
        ),
    ]


def _ratio(top: float | None, bottom: float | None) -> float | None:
    return top / bottom if top is not None and bottom else None


def print_table(in_process: dict[str, dict[str, Any]], http: list[dict[str, Any]]) -> None:
    def num(value: float | None, spec: str) -> str:
        return "-" if value is None else format(value, spec)

    print(
        f"{'target':<15}{'mode':<12}{'n':>7}{'err':>6}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}"
        f"{'req/s':>9}{'srv us/call':>13}{'wrk us/call':>13}{'client cpu':>12}"
    )
    names = {"direct": "direct", "floor_f1": "floor (F1)"}
    for key, stats in in_process.items():
        print(
            f"{names[key]:<15}{'in-process':<12}{stats['n']:>7}{0:>6}"
            f"{num(stats['p50_ms'], '.3f'):>9}{num(stats['p99_ms'], '.3f'):>9}"
            f"{num(stats['max_ms'], '.2f'):>9}{num(stats['rps'], '.0f'):>9}"
        )
    for row in http:
        errors = row["sent"] - row["n"]
        print(
            f"{row['target']:<15}{'c=' + str(row['concurrency']):<12}{row['n']:>7}{errors:>6}"
            f"{num(row['p50_ms'], '.3f'):>9}{num(row['p99_ms'], '.3f'):>9}"
            f"{num(row['max_ms'], '.2f'):>9}{num(row['rps'], '.0f'):>9}"
            f"{num(row['server_cpu_us_per_call'], '.0f'):>13}"
            f"{num(row['worker_cpu_us_per_call'], '.0f'):>13}"
            f"{num(row['client_cpu_share'], '.0%'):>12}"
        )
        if errors:
            print(f"{'':<15}statuses {row['statuses']} failures {row['failures']}")


def print_aims(results: list[Aim]) -> None:
    print()
    for aim in results:
        sign = ">=" if aim.at_least else "<="
        verdict = {True: "met", False: "MISSED", None: "n/a"}[aim.met]
        value = "-" if aim.value is None else f"{aim.value:.2f}"
        print(f"{aim.name:<32}{value:>8}   aim {sign} {aim.limit:g}   {verdict}")


# -- main ---------------------------------------------------------------------------


def _exit_on_sigterm(signum: int, frame: object) -> NoReturn:
    raise SystemExit(128 + signum)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small budgets, for a smoke run")
    parser.add_argument("--json", type=Path, help="also write the report to this file")
    parser.add_argument("--workers", type=int, default=2, help="wasmlet worker processes [2]")
    parser.add_argument("--requests", type=int, help="requests per HTTP phase [3000; quick 500]")
    parser.add_argument("--seconds", type=float, help="time cap per HTTP phase [10; quick 3]")
    args = parser.parse_args()
    profile = QUICK if args.quick else FULL
    if args.requests or args.seconds:
        http_budget = profile.http
        profile = replace(
            profile,
            http=Budget(args.requests or http_budget.requests, args.seconds or http_budget.seconds),
        )
    signal.signal(signal.SIGTERM, _exit_on_sigterm)

    with tempfile.TemporaryDirectory(prefix="wasmlet-bench-") as tmp:
        workdir = Path(tmp)
        wasm = bytes(wasmtime.wat2wasm(HELLO_WAT.read_text()))
        module = ModuleCompiler(workdir / "cache").compile(wasm)
        print(f"in process: {profile.in_process}", file=sys.stderr)
        in_process = measure_in_process(module, profile.in_process)
        print(f"over HTTP: {profile.http} per phase, {args.workers} workers", file=sys.stderr)
        with http_targets(module, wasm, workdir, args.workers) as targets:
            http = measure_http(targets, profile)

    results = aims(in_process, http)
    print_table(in_process, http)
    print_aims(results)
    report = {
        "profile": profile.name,
        "http_budget": {"requests": profile.http.requests, "seconds": profile.http.seconds},
        "cpus": os.cpu_count(),
        "workers": args.workers,
        "wasmtime": version("wasmtime"),
        "in_process": in_process,
        "http": http,
        "aims": [
            {"name": a.name, "value": a.value, "limit": a.limit, "met": a.met} for a in results
        ],
    }
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, separators=(",", ":")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
