"""`wasmlet dev`'s log stream against a real server: a line logged right after the stream
starts is printed, however late its polling thread first runs."""

from __future__ import annotations

import time

import pytest

from tests.support.js import deploy_js
from tests.support.server import ServerProcess
from wasmlet.cli import dev

LOGGING_JS = (
    'export default function handler() { console.log("streamed right away"); return "ok"; }'
)


def test_a_line_logged_before_the_first_poll_is_streamed(
    server: ServerProcess,
    fname: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert deploy_js(server, fname, LOGGING_JS).status_code == 201
    monkeypatch.setattr(dev, "LOG_POLL_S", 1.5)  # the thread's first poll comes late
    stream = dev.LogStream(server.url, server.service_key, lambda: [fname])
    stream.start()
    try:
        assert server.invoke(fname).status_code == 200  # before the first poll
        deadline = time.monotonic() + 30
        printed = ""
        while "streamed right away" not in printed and time.monotonic() < deadline:
            time.sleep(0.1)
            printed += capsys.readouterr().out
    finally:
        stream.close()
    assert f"{fname} INFO  streamed right away" in printed, printed
