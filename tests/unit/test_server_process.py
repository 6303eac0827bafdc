"""The test harness's server: what parallel test processes rely on."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import httpx
import pytest

from tests.support import zygote
from tests.support.server import ServerProcess


def test_a_port_taken_before_the_bind_is_retried_on_another(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        server = ServerProcess(tmp_path / "data", {"WASMLET_WORKERS": "1"}, port=port)
        try:
            server.start()
            assert server.port != port
            assert server.invoke("nothing-deployed").status_code == 404
            assert sum("address already in use" in line for line in server.lines) == 0
        finally:
            server.stop()


def test_only_wasmlet_settings_are_forked_the_rest_is_a_fresh_process() -> None:
    if os.environ.get("WASMLET_TEST_NO_ZYGOTE") == "1":
        pytest.skip("the zygote is turned off")
    env = dict(os.environ)
    assert zygote.usable({**env, "WASMLET_WORKERS": "3"})
    assert not zygote.usable({**env, "PYTHONPATH": "/elsewhere"})
    assert not zygote.usable({**env, "PGPASSWORD": "x"})
    assert not zygote.usable({key: value for key, value in env.items() if key != "PATH"})


def test_a_forked_server_has_its_own_settings_and_stops(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "data", {"WASMLET_WORKERS": "1"})
    try:
        server.start()
        health = server.invoke("x")  # any request: the server answers
        assert health.status_code == 404
        workers = httpx.get(server.url + "/health", timeout=30).json()["workers"]
        assert workers["size"] == 1
    finally:
        server.stop()
    assert server.process is not None and server.process.poll() is not None
