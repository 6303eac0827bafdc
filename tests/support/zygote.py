"""Start `wasmlet serve` by forking a process that has already imported the server.

A fresh `python -m wasmlet.cli.main serve` spends about 2.5 s of CPU importing FastAPI,
pydantic, wasmtime and the server's modules before it does anything; the suite starts
a few hundred servers. The zygote is one helper process per test process that imports
all of that once, then forks a child per server: the child sets the environment, the
working directory and the output given, and runs the same `serve` command as the
command line does. From the fork on, nothing differs from a fresh process: settings
are read then, the workers are fresh `python -m wasmlet.runtime.worker` processes.

The zygote is single-threaded (a fork of a threaded process is not safe) and is driven
over a SOCK_SEQPACKET socket: a request is a JSON message with the write end of the
output pipe attached (SCM_RIGHTS); the answers are `{"started": pid}` and later
`{"exited": pid, "code": n}`. `ForkedProcess` gives the test the parts of
`subprocess.Popen` that `ServerProcess` and the tests use.

Only the test process uses it (`tests/support/server.py`), and only for servers whose
environment differs in WASMLET_* settings alone (see `usable`); the others, and every
server when WASMLET_TEST_NO_ZYGOTE=1, are started as plain subprocesses.
"""

from __future__ import annotations

import array
import atexit
import contextlib
import json
import os
import select
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

REPO_ROOT = Path(__file__).resolve().parents[2]
_MAX_MESSAGE = 1 << 20

__all__ = ["ForkedProcess", "fork_server", "usable"]


def usable(env: Mapping[str, str]) -> bool:
    """Whether a server with this environment is forked (else: a plain subprocess).

    Only servers whose environment differs from the test process's in wasmlet's own
    settings (WASMLET_*) are: any other variable a test sets is about the process itself
    (PYTHONPATH acts at interpreter start, which a fork skips; /proc/PID/environ of a
    fork shows the zygote's environment, not the one set after the fork)."""
    if os.environ.get("WASMLET_TEST_NO_ZYGOTE") == "1":
        return False
    keys = {key for key in (*env, *os.environ) if not key.startswith("WASMLET_")}
    return all(env.get(key) == os.environ.get(key) for key in keys)


class ForkedProcess:
    """A forked server, as much of `subprocess.Popen[bytes]` as the tests use."""

    def __init__(self, pid: int, stdout: IO[bytes], zygote: _Zygote) -> None:
        self.pid = pid
        self.stdout: IO[bytes] | None = stdout
        self.stderr: IO[bytes] | None = None
        self.returncode: int | None = None
        self._zygote = zygote
        self._ended = threading.Event()

    def _exited(self, code: int) -> None:
        self.returncode = code
        self._ended.set()

    def poll(self) -> int | None:
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if not self._ended.wait(timeout):
            raise subprocess.TimeoutExpired(["wasmlet", "serve"], timeout or 0)
        assert self.returncode is not None
        return self.returncode

    def send_signal(self, sig: int) -> None:
        if self.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, sig)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


class _Zygote:
    """The client side: one zygote process and the thread that reads its answers."""

    def __init__(self) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self._sock = ours
        self._process = subprocess.Popen(
            [sys.executable, "-m", "tests.support.zygote", str(theirs.fileno())],
            pass_fds=[theirs.fileno()],
            stdin=subprocess.DEVNULL,
            cwd=REPO_ROOT,
        )
        theirs.close()
        self._lock = threading.Lock()  # one request at a time: its answer is the next start
        self._started: list[int] = []
        self._started_cond = threading.Condition()
        self._processes: dict[int, ForkedProcess] = {}
        self._early_exits: dict[int, int] = {}
        self._alive = True
        threading.Thread(target=self._read, daemon=True, name="zygote-reader").start()

    def spawn(self, argv: list[str], env: Mapping[str, str], cwd: str) -> ForkedProcess:
        read_end, write_end = os.pipe()
        try:
            with self._lock:
                message = json.dumps({"argv": argv, "env": dict(env), "cwd": cwd}).encode()
                socket.send_fds(self._sock, [message], [write_end])
                with self._started_cond:
                    while not self._started and self._alive:
                        self._started_cond.wait(1)
                    if not self._started:
                        raise RuntimeError("the server zygote has ended")
                    pid = self._started.pop(0)
                    process = ForkedProcess(pid, os.fdopen(read_end, "rb"), self)
                    read_end = -1
                    self._processes[pid] = process
                    if pid in self._early_exits:
                        process._exited(self._early_exits.pop(pid))
            return process
        finally:
            os.close(write_end)
            if read_end != -1:
                os.close(read_end)

    def _read(self) -> None:
        while True:
            try:
                data = self._sock.recv(_MAX_MESSAGE)
            except OSError:
                data = b""
            if not data:
                break
            answer = json.loads(data)
            with self._started_cond:
                if "started" in answer:
                    self._started.append(int(answer["started"]))
                    self._started_cond.notify_all()
                else:
                    pid, code = int(answer["exited"]), int(answer["code"])
                    process = self._processes.pop(pid, None)
                    if process is None:
                        self._early_exits[pid] = code
                    else:
                        process._exited(code)
        with self._started_cond:
            self._alive = False
            self._started_cond.notify_all()
            for process in self._processes.values():
                process._exited(-1)

    def close(self) -> None:
        self._sock.close()
        try:
            self._process.wait(10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()


_zygotes: list[_Zygote] = []  # at most one: started on the first forked server
_zygote_lock = threading.Lock()


def fork_server(argv: list[str], env: Mapping[str, str], cwd: str | None = None) -> ForkedProcess:
    """Run `argv` (python -m wasmlet.cli.main ...) in a child forked from the zygote."""
    with _zygote_lock:
        if not _zygotes:
            _zygotes.append(_Zygote())
            atexit.register(_zygotes[0].close)
        zygote = _zygotes[0]
    return zygote.spawn(argv, env, cwd or os.getcwd())


# --- the zygote process ------------------------------------------------------------


def _serve(sock: socket.socket) -> None:
    import wasmlet.api.app
    import wasmlet.cli.main  # noqa: F401

    children: set[int] = set()
    while True:
        readable, _, _ = select.select([sock], [], [], 0.05)
        _reap(sock, children)
        if not readable:
            continue
        fds = array.array("i")
        data, ancdata, _, _ = sock.recvmsg(_MAX_MESSAGE, socket.CMSG_LEN(fds.itemsize))
        if not data:  # the test process is gone: its servers are stopped by it or die
            return
        for level, kind, payload in ancdata:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fds.frombytes(payload[: len(payload) - len(payload) % fds.itemsize])
        request = json.loads(data)
        pid = os.fork()
        if pid == 0:
            sock.close()
            _child(request, fds[0])
        os.close(fds[0])
        children.add(pid)
        sock.send(json.dumps({"started": pid}).encode())


def _reap(sock: socket.socket, children: set[int]) -> None:
    for pid in list(children):
        done, status = os.waitpid(pid, os.WNOHANG)
        if done == 0:
            continue
        children.discard(pid)
        code = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
        with contextlib.suppress(OSError):
            sock.send(json.dumps({"exited": pid, "code": code}).encode())


def _child(request: dict[str, Any], out: int) -> None:
    code = 1
    try:
        import tempfile

        os.dup2(out, 1)
        os.dup2(out, 2)
        os.close(out)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.close(null)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        tempfile.tempdir = None  # read TMPDIR again
        sys.argv = list(request["argv"])
        from wasmlet.cli.main import main

        main.main(args=sys.argv[3:], prog_name="wasmlet", standalone_mode=True)
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:
        import traceback

        traceback.print_exc()
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


if __name__ == "__main__":
    _serve(socket.socket(fileno=int(sys.argv[1])))
