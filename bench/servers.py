"""The HTTP targets as subprocesses: start, wait until listening, stop, read their CPU.

Every process started here is stopped by its own pid (terminate, wait, kill if it
will not go), also when the benchmark fails. Worker processes of `wasmlet serve` are
the server's to stop: they exit when their pipe to it closes.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 15.0


class TargetFailed(Exception):
    """A target process died or never started listening."""


@dataclass(frozen=True, slots=True)
class ProcessCpu:
    """CPU seconds (user + system) of a process and of its child processes."""

    own_s: float
    children_s: float


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def running(
    argv: list[str], port: int, log_path: Path, env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """Start `argv` with its output in `log_path`; yield once it accepts on `port`."""
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env
        )
    try:
        _wait_listening(process, port, log_path)
        yield process
    finally:
        stop(process)


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _wait_listening(process: subprocess.Popen[bytes], port: int, log_path: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise TargetFailed(f"exited with {process.returncode}: {_tail(log_path)}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.1)
    raise TargetFailed(f"not listening on {port} after {START_TIMEOUT_S}s: {_tail(log_path)}")


def _tail(path: Path, size: int = 2000) -> str:
    return path.read_bytes()[-size:].decode("utf-8", "replace")


def cpu_of(pid: int) -> ProcessCpu | None:
    """From /proc; None where there is no /proc (the report then leaves CPU out)."""
    own = _cpu_s(pid)
    if own is None:
        return None
    children = sum(_cpu_s(child) or 0.0 for child in _children(pid))
    return ProcessCpu(own, children)


def _stat_fields(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return raw.rpartition(")")[2].split()


def _cpu_s(pid: int) -> float | None:
    fields = _stat_fields(pid)
    if fields is None:
        return None
    # After the command name: state, ppid, ..., utime (11), stime (12), in clock ticks.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _children(pid: int) -> list[int]:
    children = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat_fields(int(entry.name))
            if fields is not None and fields[1] == str(pid):
                children.append(int(entry.name))
    return children
