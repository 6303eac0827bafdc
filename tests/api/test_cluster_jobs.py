"""Several real nodes on one PostgreSQL database: start-up, the queue through a database
outage, a node killed mid-run, and a node that cannot run a function.

Figures (twice-run jobs, duplicate events) are printed: run with `-s` to see them.
"""

from __future__ import annotations

import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from tests.support.appdb import wait_until
from tests.support.build import build_c, wat
from tests.support.cluster import Cluster, cluster
from tests.support.server import ServerProcess
from tests.support.wasmgen import many_functions

pytestmark = pytest.mark.postgres

FINAL = {"done", "dead"}
# Traps when the payload starts with "f", succeeds otherwise: a function that fails on
# one node (where it is sent failing calls) and is healthy everywhere else.
PICKY_WAT = """
(module
  (import "wasi_snapshot_preview1" "fd_read"
    (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "_start")
    (i32.store (i32.const 0) (i32.const 64))
    (i32.store (i32.const 4) (i32.const 16))
    (drop (call $fd_read (i32.const 0) (i32.const 0) (i32.const 1) (i32.const 8)))
    (if (i32.eq (i32.load8_u (i32.const 64)) (i32.const 102)) (then unreachable))))
"""


def test_three_nodes_started_together_on_an_empty_database_all_become_healthy(
    tmp_path: Path,
) -> None:
    """Three rounds: the race on the catalogs does not show every time."""
    for round_ in range(3):
        with cluster(tmp_path / f"round{round_}", 3) as c:  # raises if a node exits
            for node in c.nodes:
                assert httpx.get(node.url + "/health", timeout=10).status_code == 200
                assert node.process is not None and node.process.poll() is None


def _deploy_everywhere(
    c: Cluster,
    name: str,
    wasm: bytes,
    config: dict[str, Any] | None = None,
    triggers: list[dict[str, Any]] | None = None,
) -> None:
    """Deploy on every node (same module, new versions) so each has it compiled."""
    for node in c.nodes:
        response = node.deploy(name, wasm, config, triggers)
        assert response.status_code in (200, 201), response.text  # 200: a new version


def _job_states(c: Cluster) -> Counter[str]:
    with psycopg.connect(c.pg.url) as conn:
        rows = conn.execute("SELECT status, COUNT(*) FROM wasmlet.jobs GROUP BY status")
        return Counter({status: int(n) for status, n in rows.fetchall()})


def _runs_per_job(nodes: list[ServerProcess], function: str) -> Counter[str]:
    """How many times each job ran, from every node's invocation log lines."""
    runs: Counter[str] = Counter()
    for node in nodes:
        for entry in node.json_logs():
            if entry.get("function") == function and entry.get("message") in (
                "invocation succeeded",
                "invocation failed",
            ):
                runs[str(entry.get("request_id"))] += 1
    return runs


def test_a_database_outage_during_200_async_jobs_leaves_none_running(tmp_path: Path) -> None:
    with cluster(tmp_path, 3, through_proxy=True) as c:
        assert c.proxy is not None
        _deploy_everywhere(c, "nap", wat("sleep"))
        ids: list[str] = []
        with ThreadPoolExecutor(6) as pool:
            for response in pool.map(
                lambda i: c[i % 3].invoke("nap", b"500", {"prefer": "respond-async"}), range(200)
            ):
                assert response.status_code == 202, response.text
                ids.append(response.json()["invocation_id"])
        wait_until(lambda: _job_states(c)["running"] >= 3, 60, "jobs in flight")
        c.proxy.cut()
        time.sleep(15)  # the outage itself: jobs finish while nothing can be written
        c.proxy.restore()
        restored = time.monotonic()
        wait_until(lambda: sum(_job_states(c)[s] for s in FINAL) == 200, 60, "all jobs final")
        settled_s = time.monotonic() - restored
        states = _job_states(c)
        runs = _runs_per_job(c.nodes, "nap")
        twice = sorted(job for job, n in runs.items() if n > 1)
        with httpx.Client(timeout=30) as client:
            for job_id in ids[:20]:
                view = client.get(
                    f"{c[1].url}/functions/v1/invocations/{job_id}", headers=c[1].anon_headers()
                ).json()
                assert view["status"] in FINAL
        print(
            f"\n[outage] states={dict(states)} final {settled_s:.1f}s after restore; "
            f"ran twice: {len(twice)} of 200; runs logged: {sum(runs.values())}"
        )
        assert states["running"] == 0 and states["queued"] == 0
        assert set(runs) == set(ids), _unlogged(c, sorted(set(ids) - set(runs)))  # each ran


def _unlogged(c: Cluster, job_ids: list[str]) -> str:
    """What is known of jobs with no invocation log line: their rows, and every line of
    every node (JSON or not) that names them. Failed twice in full runs, never alone."""
    report = []
    with psycopg.connect(c.pg.url) as conn:
        for job_id in job_ids:
            row = conn.execute(
                "SELECT status, attempts, locked_by, dead_reason, last_error_type, last_error, "
                "result_status FROM wasmlet.jobs WHERE id = %s",
                (job_id,),
            ).fetchone()
            report.append(f"{job_id}: {row}")
            for i, node in enumerate(c.nodes):
                report += [f"  node {i}: {line}" for line in list(node.lines) if job_id in line]
    return "jobs without an invocation log line:\n" + "\n".join(report)


def _seen(c: Cluster) -> tuple[int, int]:
    with psycopg.connect(c.pg.url) as conn:
        row = conn.execute("SELECT COUNT(*), COUNT(DISTINCT event_id) FROM seen").fetchone()
        assert row is not None
        return int(row[0]), int(row[1])


def test_2000_trigger_events_with_a_node_killed_mid_run_are_all_delivered(
    tmp_path: Path,
) -> None:
    with cluster(tmp_path, 3, WASMLET_JOB_LEASE_S="5") as c:
        with psycopg.connect(c.pg.url, autocommit=True) as conn:
            conn.execute("CREATE TABLE items (id INTEGER PRIMARY KEY)")
            conn.execute("CREATE TABLE seen (event_id TEXT NOT NULL)")
        record = "INSERT INTO seen (event_id) VALUES ($1::jsonb->>'id')"
        _deploy_everywhere(
            c, "recorder", build_c("on_user_created"),
            config={"env": {"PROFILE_SQL": record, "SUCCEED": "1"}},
            triggers=[{"type": "database", "table": "items", "events": ["INSERT"]}],
        )  # fmt: skip
        with psycopg.connect(c.pg.url, autocommit=True) as conn:
            for start in range(0, 2000, 100):
                conn.execute(
                    "INSERT INTO items (id) SELECT generate_series(%s::int, %s::int)",
                    (start, start + 99),
                )
        wait_until(lambda: _seen(c)[1] >= 300, 120, "deliveries under way")
        victim = c[1].process
        assert victim is not None
        victim.kill()  # kill -9: no shutdown of any kind
        victim.wait()
        delivered_at_kill = _seen(c)[1]
        wait_until(lambda: _seen(c)[1] == 2000, 180, "all 2,000 events")
        total, distinct = _seen(c)
        duplicates = total - distinct
        print(
            f"\n[kill] killed at {delivered_at_kill} delivered; {duplicates} duplicates in "
            f"2,000 events = {duplicates / 2:.1f} per 1,000"
        )
        assert delivered_at_kill < 2000, "the kill came too late to leave events pending"
        # A run's row in `seen` commits before its job's final state is written (and a
        # re-run of an event the dead node had claimed may still be going): every job
        # reaches a final state, the dead node's after its lease ends.
        wait_until(lambda: _job_states(c).keys() <= FINAL, 120, "every job in a final state")


def test_a_node_that_cannot_build_a_module_leaves_its_jobs_to_the_other_node(
    tmp_path: Path,
) -> None:
    """Node 0 compiles under a memory limit this module needs more than: it learns so
    when the deploy is announced, then claims none of the function's jobs."""
    wasm = many_functions(30_000)  # ~250 MB to compile: over 192 MB, under 512 MB
    sick_env = {"WASMLET_COMPILE_MEMORY_MB": "192"}
    with cluster(tmp_path, 2, staggered=True, per_node=[sick_env]) as c:
        sick, healthy = c[0], c[1]
        assert healthy.deploy("big", wasm).status_code == 201
        sick.wait_for_log(message="stored module does not compile", timeout_s=120)
        refused = sick.invoke("big")
        assert refused.status_code == 503, refused.text
        assert refused.json()["error"]["type"] == "module_unavailable"
        for i in range(40):
            node = c[i % 2]
            response = node.invoke("big", b"", {"prefer": "respond-async"})
            assert response.status_code == 202, response.text
        wait_until(lambda: _job_states(c)["done"] == 40, 120, "all 40 jobs done")
        assert _job_states(c)["dead"] == 0
        tried_on_sick = [
            e for e in sick.json_logs()
            if e.get("function") == "big" and e.get("trigger") == "http_async"
        ]  # fmt: skip
        assert tried_on_sick == []  # never claimed there: no attempt, no refusal
