"""Process isolation: a dead or stuck worker fails one invocation, never the server."""

from __future__ import annotations

import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from tests.support.build import wat
from tests.support.server import ServerProcess


def worker_pids(server: ServerProcess) -> list[int]:
    assert server.process is not None
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == server.process.pid and b"wasmlet.runtime.worker" in cmdline:
            pids.append(int(entry.name))
    return sorted(pids)


def _cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def busy_worker(server: ServerProcess, timeout_s: float = 60) -> int:
    """The worker spinning on the CPU (the one running an infinite loop).

    Waits until one worker has used 0.2 s of CPU more than any other: on a busy
    machine the spinning worker may get little of it, but the idle ones get none.
    """
    pids = worker_pids(server)
    before = {pid: _cpu_ticks(pid) for pid in pids}
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        time.sleep(0.1)
        deltas = {pid: _cpu_ticks(pid) - before[pid] for pid in pids}
        ranked = sorted(pids, key=lambda p: deltas[p], reverse=True)
        if deltas[ranked[0]] - max((deltas[p] for p in ranked[1:]), default=0) > 20:
            return ranked[0]
    raise AssertionError(f"no worker is spinning: {deltas}")


def wait_for_workers(server: ServerProcess, count: int, timeout_s: float = 10) -> list[int]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        health = httpx.get(server.url + "/health").json()
        if health["workers"]["alive"] == count and len(worker_pids(server)) == count:
            return worker_pids(server)
        time.sleep(0.05)
    raise AssertionError("workers were not replaced")


def test_kill_9_of_a_worker_mid_invocation(server: ServerProcess, fname: str) -> None:
    spin_or_ok = (Path(__file__).parent.parent / "fixtures" / "spin_on_s.wat").read_text()
    server.deploy(fname, wat(spin_or_ok), {"timeout_ms": 8000})
    restarts = server.metric("functions_worker_restarts_total", reason="crashed")
    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(server.invoke, fname, b"spin")
        victim = busy_worker(server)
        # The other worker keeps serving while one is busy.
        assert server.invoke(fname, b"go").content == b"ok"
        os.kill(victim, signal.SIGKILL)
        response = pending.result(timeout=60)
    assert response.status_code == 500
    error = response.json()["error"]
    assert error["type"] == "runtime_crash"
    assert "SIGKILL" in error["message"]
    pids = wait_for_workers(server, 2)
    assert victim not in pids
    assert server.metric("functions_worker_restarts_total", reason="crashed") == restarts + 1
    log = server.wait_for_log(operation="worker", pid=victim, message="worker crashed")
    assert log["level"] == "ERROR"
    assert log["error"] == "killed by signal SIGKILL"
    # The same function works next, on every worker, and deploys still work.
    for _ in range(4):
        assert server.invoke(fname, b"go").content == b"ok"
    assert server.deploy(fname + "-after", wat("hello")).status_code == 201


def test_worker_stuck_in_a_host_call_is_killed_and_replaced(
    server: ServerProcess, fname: str
) -> None:
    """sleep.wat blocks in poll_oneoff, where epoch interruption cannot reach it."""
    server.deploy(fname, wat("sleep"), {"timeout_ms": 500})
    before = set(worker_pids(server))
    started = time.monotonic()
    response = server.invoke(fname, b"20000")
    elapsed = time.monotonic() - started
    assert response.status_code == 504
    assert response.json()["error"]["type"] == "timeout"
    assert 1.4 < elapsed < 60  # killed after timeout 0.5 s + grace 1 s, never before
    after = set(wait_for_workers(server, 2))
    assert len(before - after) == 1
    assert server.invoke(fname, b"10").status_code == 200


def test_stopped_worker_is_killed_after_timeout_and_grace(
    server: ServerProcess, fname: str
) -> None:
    # 3 s: on a loaded machine (parallel test processes) the spinning worker must get
    # its 0.2 s of CPU for `busy_worker` before the timeout ends the spin.
    server.deploy(fname, wat("infinite_loop"), {"timeout_ms": 3000})
    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(server.invoke, fname)
        victim = busy_worker(server)
        os.kill(victim, signal.SIGSTOP)
        response = pending.result(timeout=60)
    assert response.status_code == 504
    assert victim not in wait_for_workers(server, 2)


def test_host_call_that_ends_after_the_deadline_is_still_a_timeout(
    server: ServerProcess, fname: str
) -> None:
    server.deploy(fname, wat("sleep"), {"timeout_ms": 300})
    response = server.invoke(fname, b"700")  # returns before timeout + grace
    assert response.status_code == 504
    assert response.json()["error"]["message"] == "Function timeout after 0.3s"
