"""How fast a deploy reaches the other nodes of a cluster on one PostgreSQL database.

    .venv/bin/python bench/bench_cluster.py [--nodes N] [--redeploys N] [--json PATH]

Starts `--nodes` real `wasmlet serve` nodes (default 3, one after another) on a throwaway
PostgreSQL database (tests/support/cluster.py), deploys a function that prints its
version on node A, then redeploys it `--redeploys` times (default 20), each a module
the other nodes have never compiled. Per redeploy, for every other node: the time from
A's deploy response (200) to the first response of that node with the new version's
body, polled in a closed loop on a keep-alive connection per node. Every other answer
seen while polling is counted by status: the previous version's 200 is expected, any
5xx is a failure. Prints p50/max per node and for the slowest node per redeploy; the
last line of stdout is the report as JSON.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
if str(REPO_ROOT) not in sys.path:  # for tests.support, run as a script
    sys.path.insert(0, str(REPO_ROOT))

import httpx  # noqa: E402
from tests.support.cluster import cluster  # noqa: E402
from tests.support.server import ServerProcess  # noqa: E402
from tests.support.wasmgen import says  # noqa: E402

FUNCTION = "bench-propagation"
GIVE_UP_S = 30.0


@dataclass
class NodeReport:
    url: str
    seconds: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)


def first_new_body(node: ServerProcess, body: str, since: float, report: NodeReport) -> None:
    """Poll `node` until it answers `body`; record the seconds since `since`."""
    with httpx.Client(headers=node.anon_headers(), timeout=GIVE_UP_S) as client:
        url = f"{node.url}/functions/v1/invoke/{FUNCTION}"
        while True:
            response = client.post(url)
            now = time.monotonic()
            report.statuses[response.status_code] += 1
            if response.status_code == 200 and response.text == body:
                report.seconds.append(now - since)
                return
            if now - since > GIVE_UP_S:
                raise RuntimeError(f"{node.url} never served {body!r}: {response.text[:200]}")


def run(nodes: int, redeploys: int) -> dict[str, object]:
    with (
        tempfile.TemporaryDirectory(prefix="bench-cluster-") as tmp,
        cluster(Path(tmp), nodes, staggered=True) as running,
    ):
        deployer, others = running[0], running.nodes[1:]
        reports = [NodeReport(node.url) for node in others]
        slowest: list[float] = []
        for version in range(redeploys + 1):
            body = f"version {version}"
            deployed = deployer.deploy(FUNCTION, says(body))
            answered = time.monotonic()
            if deployed.status_code not in (200, 201):
                raise RuntimeError(f"deploy failed: {deployed.status_code} {deployed.text}")
            scratch = [NodeReport(node.url) for node in others]
            threads = [
                threading.Thread(target=first_new_body, args=(node, body, answered, report))
                for node, report in zip(others, scratch, strict=True)
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            if version == 0:
                continue  # the first deploy creates the function: not a redeploy
            for kept, fresh in zip(reports, scratch, strict=True):
                kept.seconds.extend(fresh.seconds)
                kept.statuses.update(fresh.statuses)
            slowest.append(max(r.seconds[-1] for r in scratch))
    return {
        "nodes": nodes,
        "redeploys": redeploys,
        "per_node": [
            {
                "url": r.url,
                "p50_ms": round(statistics.median(r.seconds) * 1000, 1),
                "max_ms": round(max(r.seconds) * 1000, 1),
                "statuses": dict(r.statuses),
            }
            for r in reports
        ],
        "all_nodes_p50_ms": round(statistics.median(slowest) * 1000, 1),
        "all_nodes_max_ms": round(max(slowest) * 1000, 1),
        "server_errors": sum(n for r in reports for s, n in r.statuses.items() if s >= 500),
        "raw_ms": [asdict(r)["seconds"] for r in reports],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=3)
    parser.add_argument("--redeploys", type=int, default=20)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if args.nodes < 2 or not 1 <= args.redeploys <= 1000:
        parser.error("--nodes must be at least 2 and --redeploys between 1 and 1000")
    report = run(args.nodes, args.redeploys)
    print(f"deploy response on A -> first new body, {args.redeploys} redeploys")
    print(f"{'node':<28} {'p50 ms':>8} {'max ms':>8}  statuses seen while polling")
    for node in report["per_node"]:  # type: ignore[attr-defined]
        print(f"{node['url']:<28} {node['p50_ms']:>8} {node['max_ms']:>8}  {node['statuses']}")
    print(
        f"{'every node':<28} {report['all_nodes_p50_ms']:>8} {report['all_nodes_max_ms']:>8}"
        f"  5xx: {report['server_errors']}"
    )
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=2))
    print(json.dumps(report))


if __name__ == "__main__":
    main()
