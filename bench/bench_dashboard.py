"""What the dashboard's functions page costs with 10,000 functions' history (SQLite).

    .venv/bin/python bench/bench_dashboard.py [--functions 10000] [--per-function 20]

Fills a temporary platform store with N functions, each with `--per-function`
invocations in the last 5 minutes, then times (median of 15 runs) what a page of the
functions page reads (`GET /functions/v1/stats?limit=50`: a keyset page of functions,
then each one's recent invocations) against the unpaged stats (every function, every
recent invocation), plus one function's 3-hour timeline and a request id lookup.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from wasmlet.observability.history_views import HistoryReader, summarize
from wasmlet.store.base import Store
from wasmlet.store.sqlite import SqliteStore

RUNS = 15
PAGE = 50


def fill(store: Store, functions: int, per_function: int) -> None:
    now = time.time()
    names = [f"fn-{n:05d}" for n in range(functions)]
    meta = {"config": "{}", "triggers": json.dumps([{"type": "http"}]), "now": now}
    store.execute("put_module", key="0" * 64, wasm=b"\0asm", now=now)
    store.execute_many("insert_function", [{"name": n, "enabled": True, **meta} for n in names])
    store.execute_many(
        "insert_version",
        [
            {"name": n, "version": 1, "module_key": "0" * 64, "runtime": "wasm", "size": 100,
             "rolled_back_from": None, **meta}
            for n in names
        ],
    )  # fmt: skip
    rows: list[dict[str, Any]] = []
    for n, name in enumerate(names):
        for i in range(per_function):
            failed = (n + i) % 7 == 0
            rows.append(
                {"id": f"{name}-{i}", "function_name": name, "version": 1,
                 "trigger_kind": "http", "attempt": 1, "status": 500 if failed else 200,
                 "error_type": "function_error" if failed else None,
                 "error": "boom" if failed else None, "duration_ms": 1.0 + i,
                 "started_at": now - 290 + i, "log_lines": 1, "user_id": None}
            )  # fmt: skip
    store.execute_many("insert_invocation", rows)


def timed(run: Callable[[], object]) -> float:
    times = []
    for _ in range(RUNS):
        start = time.perf_counter()
        run()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--functions", type=int, default=10_000)
    parser.add_argument("--per-function", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, SqliteStore(Path(tmp) / "platform.db") as store:
        store.migrate()
        fill(store, args.functions, args.per_function)
        reader = HistoryReader(store)
        since = time.time() - 300

        def page() -> object:
            rows = store.fetch_all("list_functions_page", after="fn-05000", limit=PAGE)
            return [summarize(reader.recent_of(r["name"], since), [r["name"]]) for r in rows]

        def unpaged() -> object:
            names = [r["name"] for r in store.fetch_all("list_functions")]
            return summarize(reader.recent(since), names)

        results = {
            f"functions page ({PAGE}, paged)": timed(page),
            "stats without paging (all)": timed(unpaged),
            "one function's timeline": timed(lambda: reader.timeline("fn-04242", since - 3 * 3600)),
            "request id lookup": timed(lambda: reader.request("fn-04242-3")),
        }
    total = args.functions * args.per_function
    print(f"{args.functions} functions, {total} invocations in the window (SQLite)")
    for what, ms in results.items():
        print(f"  {what:32s} {ms:9.2f} ms (median of {RUNS})")


if __name__ == "__main__":
    main()
