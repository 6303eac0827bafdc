"""Metric values are exact after a known mix of invocations run across 4 worker
processes, the stats route agrees with the invocation history, and the gauges read
from the store (queue, dead letters, scheduler heartbeat) say what is in it."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from tests.conftest import ServerFactory
from tests.support.appdb import wait_until
from tests.support.build import wat
from wasmlet.observability.history_views import percentile
from wasmlet.observability.store_gauges import read_snapshot
from wasmlet.store.base import Store
from wasmlet.triggers.queue import DeadReason, JobQueue, NewJob

MIX = wat((Path(__file__).parent.parent / "fixtures" / "mix.wat").read_text())
# 7 successes, 3 traps, 2 timeouts, 1 memory limit hit.
PAYLOADS = [b"ok"] * 7 + [b"trap"] * 3 + [b"spin"] * 2 + [b"mem"]


def test_exact_values_after_a_known_mix_across_four_workers(
    start_server: ServerFactory, fname: str
) -> None:
    with start_server(WASMLET_WORKERS="4") as server:
        assert server.deploy(fname, MIX, {"timeout_ms": 2000}).status_code == 201
        with ThreadPoolExecutor(len(PAYLOADS)) as pool:
            statuses = sorted(pool.map(lambda p: server.invoke(fname, p).status_code, PAYLOADS))
        assert statuses == [200] * 7 + [500] * 3 + [504] * 2 + [507]

        m = server.metric
        assert httpx.get(server.url + "/health").json()["workers"]["size"] == 4
        for status, count in (("200", 7), ("500", 3), ("504", 2), ("507", 1)):
            assert m("functions_invocations_total", name=fname, status=status) == count
        for error_type, count in (
            ("function_error", 3), ("timeout", 2), ("memory_limit_exceeded", 1),
        ):  # fmt: skip
            assert m("functions_errors_total", name=fname, error_type=error_type) == count
        assert m("functions_timeout_total", name=fname) == 2
        assert m("functions_memory_exceeded_total", name=fname) == 1
        assert m("functions_duration_seconds_count", name=fname) == 13
        assert m("functions_in_flight") == 0
        assert m("functions_workers_alive") == 4
        assert m("functions_worker_restarts_total", reason="crashed") == 0
        assert m("functions_worker_restarts_total", reason="killed") == 0
        assert m("functions_history_dropped_total") == 0
        for status in ("queued", "running", "dead"):
            assert m("functions_queue_depth", status=status) == 0
        assert m("functions_queue_oldest_age_seconds") == 0

        history = f"{server.url}/functions/v1/functions/{fname}/invocations"

        def rows() -> list[dict[str, object]]:
            got: list[dict[str, object]] = httpx.get(
                history, headers=server.service_headers()
            ).json()["invocations"]
            return got

        wait_until(lambda: len(rows()) == 13, 10, "13 rows")
        durations = sorted(float(str(row["duration_ms"])) for row in rows())
        stats = httpx.get(
            server.url + "/functions/v1/stats",
            params={"minutes": 5},
            headers=server.service_headers(),
        ).json()
        (figures,) = [f for f in stats["functions"] if f["name"] == fname]
        assert figures == {
            "name": fname, "invocations": 13, "errors": 6, "error_rate": round(6 / 13, 4),
            "timeouts": 2, "memory_limit_hits": 1, "p50_ms": percentile(durations, 0.5),
            "p99_ms": percentile(durations, 0.99), "circuit_breaker": "closed",
        }  # fmt: skip
        assert figures["p99_ms"] >= 2000  # the timeouts, at their 2 s limit
        assert stats["server"]["workers"] == {"alive": 4, "size": 4, "busy": 0}
        assert stats["server"]["in_flight"] == 0


def test_dead_letters_are_gauged_per_function(start_server: ServerFactory, fname: str) -> None:
    with start_server() as server:
        server.deploy(fname, wat("trap"))
        for _ in range(2):
            queued = httpx.post(
                f"{server.url}/functions/v1/invoke/{fname}",
                headers={**server.anon_headers(), "prefer": "respond-async"},
            )
            assert queued.status_code == 202
        wait_until(
            lambda: server.metric("functions_dead_letter_queue_size", name=fname) == 2,
            10,
            "two dead letters",
        )
        assert server.metric("functions_queue_depth", status="dead") == 2
        # The scheduler ticks every second on every node: its newest beat is recent.
        age = server.metric("functions_scheduler_heartbeat_age_seconds")
        assert 0 <= age < 5
        httpx.delete(f"{server.url}/functions/v1/dlq", headers=server.service_headers())
        wait_until(
            lambda: server.metric("functions_dead_letter_queue_size", name=fname) == 0,
            5,
            "an empty dead letter queue",
        )


def test_snapshot_reads_depth_lag_and_dead_letters(store: Store) -> None:
    store.migrate()
    now = [1000.0]
    queue = JobQueue(store, "node", clock=lambda: now[0])
    queue.enqueue(
        [NewJob(f"j{n}", "f", "database", b"{}", run_at=990.0 + n) for n in range(4)]
        + [NewJob("later", "g", "database", b"{}", run_at=2000.0)]
    )
    claimed = queue.claim(2)  # j0 and j1, in either order
    queue.bury(claimed[0].id, reason=DeadReason.NON_RETRIABLE, error_type="x", error="e", version=1)
    snapshot = read_snapshot(store, now=1000.0)
    assert snapshot.queue() == {"queued": 3, "running": 1, "dead": 1}
    assert snapshot.oldest_due_age_s == 8.0  # j2 became due at 992
    assert snapshot.dead_by_function == {"f": 1}
    assert read_snapshot(store, now=0.0).oldest_due_age_s == 0.0
