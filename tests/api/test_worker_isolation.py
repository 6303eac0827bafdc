"""Workers run guest code: they hold no secrets, and the server executes nothing they send."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from tests.api.test_workers import wait_for_workers, worker_pids
from tests.conftest import ServerFactory
from tests.support.build import wat
from tests.support.postgres import fresh_database
from wasmlet.runtime.child_env import PASSED, PASSED_PREFIXES

PASSWORD = "pw-6f1c0e"


def _with_password(url: str) -> str:
    parts = urlsplit(url)
    netloc = f"{parts.username}:{PASSWORD}@{parts.hostname}:{parts.port}"
    return urlunsplit(parts._replace(netloc=netloc))


def _environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes()
    pairs = (entry.partition(b"=") for entry in raw.split(b"\0") if entry)
    return {name.decode(): value.decode() for name, _, value in pairs}


@pytest.mark.postgres
def test_workers_inherit_no_database_url_password_or_key(
    start_server: ServerFactory, fname: str
) -> None:
    with fresh_database() as pg:
        url = _with_password(pg.url)
        secrets = {
            "WASMLET_DATABASE_URL": url,
            "WASMLET_APP_DATABASE_URL": url,
            "WASMLET_APP_ROLE": pg.role,
            "PGPASSWORD": PASSWORD + "-pg",
            "WASMLET_SERVICE_KEY": "service-" + PASSWORD,
            "WASMLET_ANON_KEY": "anon-" + PASSWORD,
            "AWS_SECRET_ACCESS_KEY": "aws-" + PASSWORD,
            "OPERATOR_TOKEN": "token-" + PASSWORD,
        }
        with start_server(**secrets) as server:
            server.deploy(fname, wat("hello"))
            assert server.invoke(fname).status_code == 200
            pids = worker_pids(server)
            assert len(pids) == 2
            for pid in pids:
                environ = _environ(pid)
                assert not [v for v in environ.values() if PASSWORD in v], environ
                assert not [k for k in environ if k.startswith(("WASMLET_", "PG"))], environ
                assert all(k in PASSED or k.startswith(PASSED_PREFIXES) for k in environ)
            # The server itself still has them: the allow-list is for its children.
            assert server.process is not None
            assert _environ(server.process.pid)["PGPASSWORD"] == PASSWORD + "-pg"


ESCAPED_GUEST = """
import os, pickle, struct, sys
from pathlib import Path

if sys.orig_argv[1:3] == ["-m", "wasmlet.runtime.worker"]:
    from wasmlet.runtime import executor

    class Escape:
        def __reduce__(self):
            return (Path.touch, (Path({marker!r}),))

    framings = {{
        b"mp-pickle": lambda body: struct.pack("!i", len(body)) + body,
        b"wire-pickle": lambda body: struct.pack("<IB", len(body), 5) + body,
    }}
    run = executor.Executor.run

    def escaped_run(self, job):
        if job.stdin in framings:
            os.write(int(sys.orig_argv[-1]), framings[job.stdin](pickle.dumps(Escape())))
        return run(self, job)

    executor.Executor.run = escaped_run
"""


@pytest.mark.parametrize("framing", ["mp-pickle", "wire-pickle"])
def test_a_pickle_from_a_worker_is_a_protocol_violation_never_loaded(
    start_server: ServerFactory, fname: str, tmp_path: Path, framing: str
) -> None:
    """A guest that escaped wasmtime controls its worker: simulated by a sitecustomize
    that makes the worker send a pickle whose loading would create a marker file."""
    marker = tmp_path / "unpickled"
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(ESCAPED_GUEST.format(marker=str(marker)))
    pythonpath = os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))
    with start_server(PYTHONPATH=pythonpath) as server:
        server.deploy(fname, wat("echo"))
        assert server.invoke(fname, b"fine").content == b"fine"
        before = set(worker_pids(server))
        response = server.invoke(fname, framing.encode())
        assert not marker.exists()
        assert response.status_code == 500
        error = response.json()["error"]
        assert error["type"] == "runtime_crash"
        assert "protocol violation" in error["message"]
        log = server.wait_for_log(operation="worker", message="worker killed")
        assert log["error"].startswith("protocol violation")
        assert log["pid"] in before
        assert server.metric("functions_worker_restarts_total", reason="killed") == 1
        assert log["pid"] not in wait_for_workers(server, 2)
        for _ in range(4):
            assert server.invoke(fname, b"still serving").content == b"still serving"
    assert not marker.exists()
