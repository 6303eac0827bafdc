"""The cost of a cluster-wide `max_concurrency` per invocation, against the same call
without the limit, in the same run.

    .venv/bin/python bench/bench_cluster_limit.py [--quick] [--json PATH]

On a throwaway PostgreSQL database (WASMLET_BENCH_PG_URL, default the tests' server):

- slots: `AdvisorySlots.acquire` + `release` in this process, the mechanism alone:
  microseconds and database round trips per call;
- http: one real `wasmlet serve` on that database with examples/wat/hello.wat deployed
  twice, `hello` without a limit and `limited` with `max_concurrency: 64` (never
  reached: the limit is paid for, never refused), loaded alternately by
  bench/loadgen.py at concurrency 1 and 16.

Prints a table and the ratios limited / unlimited; the last line of stdout is the
report as JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import psycopg
import wasmtime
from psycopg import sql

from bench_invoke import Budget, summarize
from servers import free_port, running
from wasmlet.store.advisory_slots import AdvisorySlots

BENCH_DIR = Path(__file__).resolve().parent
HELLO_WAT = BENCH_DIR.parent / "examples" / "wat" / "hello.wat"
PAYLOAD = b'{"name":"bench"}'
ADMIN_URL = os.environ.get("WASMLET_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
LIMIT = 64
CONCURRENCIES = (1, 16)
ROUNDS = 4


@contextmanager
def fresh_database() -> Iterator[tuple[str, str]]:
    """A new database and app role name (both dropped afterwards): (url, role)."""
    suffix = uuid.uuid4().hex[:10]
    name, role = f"wasmlet_bench_{suffix}", f"wasmlet_bench_{suffix}_app"
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield urlunsplit(urlsplit(ADMIN_URL)._replace(path=f"/{name}")), role
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
            admin.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))


def measure_slots(url: str, calls: int) -> dict[str, Any]:
    """The mechanism alone: acquire + release, one call at a time."""

    async def run() -> dict[str, Any]:
        slots = AdvisorySlots(url, schema="bench")
        try:
            first = await slots.acquire("f", LIMIT)  # connect outside the clock
            assert first is not None
            first.release()
            await asyncio.sleep(0.05)
            slots.round_trips = 0
            latencies = []
            started = time.perf_counter()
            for _ in range(calls):
                before = time.perf_counter_ns()
                slot = await slots.acquire("f", LIMIT)
                assert slot is not None
                slot.release()
                while slots._unlocks:  # the release lands before the next acquire
                    await asyncio.sleep(0)
                latencies.append(time.perf_counter_ns() - before)
            elapsed = time.perf_counter() - started
            result = summarize(latencies, elapsed)
            result["round_trips_per_call"] = slots.round_trips / calls
            return result
        finally:
            await slots.aclose()

    return asyncio.run(run())


def load(port: int, pid: int, path: str, headers: list[str], concurrency: int,
         budget: Budget) -> dict[str, Any]:  # fmt: skip
    argv = [
        sys.executable, str(BENCH_DIR / "loadgen.py"), "--port", str(port), "--path", path,
        "--body", PAYLOAD.decode(), "--concurrency", str(concurrency),
        "--requests", str(budget.requests), "--seconds", str(budget.seconds),
        "--warmup", str(2 * concurrency), "--cpu-of", str(pid),
    ]  # fmt: skip
    for header in headers:
        argv += ["--header", header]
    done = subprocess.run(argv, capture_output=True, check=False, timeout=3 * budget.seconds + 120)
    if done.returncode != 0:
        raise RuntimeError(f"loadgen failed ({done.returncode}): {done.stderr.decode()[-2000:]}")
    raw: dict[str, Any] = json.loads(done.stdout.decode().splitlines()[-1])
    return raw


def measure_http(url: str, role: str, workdir: Path, budget: Budget) -> list[dict[str, Any]]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("WASMLET_")}
    env.update(WASMLET_DATABASE_URL=url, WASMLET_APP_ROLE=role, WASMLET_WORKERS="2")
    argv = [
        str(Path(sys.executable).with_name("wasmlet")), "serve",
        "--data-dir", str(workdir / "data"), "--port", str(port),
    ]  # fmt: skip
    with running(argv, port, workdir / "wasmlet.log", env) as server:
        _wait_healthy(port)
        keys = json.loads((workdir / "data" / "keys.json").read_text("utf-8"))
        wasm = bytes(wasmtime.wat2wasm(HELLO_WAT.read_text()))
        _deploy(port, keys["service_key"], "hello", wasm, {})
        _deploy(port, keys["service_key"], "limited", wasm, {"max_concurrency": LIMIT})
        headers = [f"Authorization: Bearer {keys['anon_key']}", "Content-Type: application/json"]
        targets = {"unlimited": "/functions/v1/invoke/hello",
                   "limited": "/functions/v1/invoke/limited"}  # fmt: skip
        for path in targets.values():  # warm-up
            load(port, server.pid, path, headers, 16, Budget(300, 3.0))
        rows = []
        per_round = Budget(budget.requests // ROUNDS, budget.seconds / ROUNDS)
        for concurrency in CONCURRENCIES:
            raw: dict[str, list[dict[str, Any]]] = {name: [] for name in targets}
            for round_ in range(ROUNDS):  # alternate, so drift hits both
                order = list(targets) if round_ % 2 == 0 else list(reversed(targets))
                for name in order:
                    raw[name].append(
                        load(port, server.pid, targets[name], headers, concurrency, per_round)
                    )
            for name, runs in raw.items():
                rows.append(_merge(name, concurrency, runs))
    return rows


def _merge(name: str, concurrency: int, runs: list[dict[str, Any]]) -> dict[str, Any]:
    latencies = [ns for run in runs for ns in run["latencies_ns"]]
    elapsed = sum(run["elapsed_s"] for run in runs)
    row = summarize(latencies, elapsed)
    cpu = sum(run["target_cpu_s"]["own"] for run in runs if run["target_cpu_s"])
    errors = sum(run["sent"] for run in runs) - row["n"]
    row.update(target=name, concurrency=concurrency, errors=errors,
               server_cpu_us_per_call=cpu / row["n"] * 1e6 if row["n"] else None)  # fmt: skip
    return row


def _wait_healthy(port: int) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError("wasmlet did not become healthy")


def _deploy(port: int, key: str, name: str, wasm: bytes, config: dict[str, Any]) -> None:
    response = httpx.post(
        f"http://127.0.0.1:{port}/functions/v1/deploy",
        json={"name": name, "wasm": base64.b64encode(wasm).decode(), "config": config},
        headers={"Authorization": f"Bearer {key}"},
        timeout=60,
    )
    if response.status_code not in (200, 201):
        raise RuntimeError(f"deploy answered {response.status_code}: {response.text}")


def ratios(http: list[dict[str, Any]]) -> dict[str, float | None]:
    out: dict[str, float | None] = {}
    for concurrency in CONCURRENCIES:
        by = {r["target"]: r for r in http if r["concurrency"] == concurrency}
        lim, unl = by["limited"], by["unlimited"]
        out[f"p50 limited / unlimited at c={concurrency}"] = _ratio(lim["p50_ms"], unl["p50_ms"])
        out[f"rps limited / unlimited at c={concurrency}"] = _ratio(lim["rps"], unl["rps"])
        out[f"srv cpu limited / unlimited at c={concurrency}"] = _ratio(
            lim["server_cpu_us_per_call"], unl["server_cpu_us_per_call"]
        )
    return out


def _ratio(top: float | None, bottom: float | None) -> float | None:
    return top / bottom if top is not None and bottom else None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small budgets, for a smoke run")
    parser.add_argument("--json", type=Path, help="also write the report to this file")
    args = parser.parse_args()
    budget = Budget(800, 4.0) if args.quick else Budget(4000, 16.0)
    slot_calls = 500 if args.quick else 5000
    with fresh_database() as (url, role), tempfile.TemporaryDirectory() as tmp:
        slots = measure_slots(url, slot_calls)
        http = measure_http(url, role, Path(tmp), budget)
    report: dict[str, Any] = {"slots": slots, "http": http, "ratios": ratios(http)}
    print(
        f"slots (in process): {slots['n']} acquire+release, p50 {slots['p50_ms'] * 1000:.0f} us, "
        f"p99 {slots['p99_ms'] * 1000:.0f} us, {slots['round_trips_per_call']:.2f} round trips/call"
    )
    print(f"{'target':<11}{'mode':<7}{'n':>7}{'err':>5}{'p50 ms':>9}{'p99 ms':>9}{'req/s':>9}"
          f"{'srv us/call':>13}")  # fmt: skip
    for row in http:
        cpu = row["server_cpu_us_per_call"]
        print(
            f"{row['target']:<11}{'c=' + str(row['concurrency']):<7}{row['n']:>7}"
            f"{row['errors']:>5}{row['p50_ms']:>9.3f}{row['p99_ms']:>9.3f}{row['rps']:>9.0f}"
            f"{'-' if cpu is None else format(cpu, '.0f'):>13}"
        )
    for name, value in report["ratios"].items():
        print(f"{name}: {'-' if value is None else format(value, '.3f')}")
    text = json.dumps(report)
    if args.json:
        args.json.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
