"""Function logs and invocation history through the real server, on SQLite and
PostgreSQL: a 500's request id leads to its lines, every invocation kind gets a row,
retention drops the oldest first, and the routes refuse what they should."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import ServerFactory
from tests.support.appdb import Backend, backend, wait_until
from tests.support.build import wat
from tests.support.server import ServerProcess

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
LOG_LINES = wat((Path(__file__).parent.parent / "fixtures" / "log_lines.wat").read_text())
RETENTION = {"WASMLET_LOG_RETENTION_LINES": "6", "WASMLET_INVOCATION_RETENTION": "4"}


@pytest.fixture(scope="module", params=BACKENDS)
def db(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Backend]:
    with backend(request.param, tmp_path_factory.mktemp("history"), **RETENTION) as b:
        yield b


def get(server: ServerProcess, path: str, **params: Any) -> dict[str, Any]:
    response = httpx.get(server.url + path, params=params, headers=server.service_headers())
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def logs(server: ServerProcess, name: str, **params: Any) -> list[dict[str, Any]]:
    lines: list[dict[str, Any]] = get(server, f"/functions/v1/functions/{name}/logs", **params)[
        "lines"
    ]
    return lines


def invocations(server: ServerProcess, name: str, **params: Any) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = get(
        server, f"/functions/v1/functions/{name}/invocations", **params
    )["invocations"]
    return rows


def until_logged(server: ServerProcess, name: str, count: int, **params: Any) -> list[Any]:
    """History is written in the background: wait for `count` lines."""
    wait_until(lambda: len(logs(server, name, **params)) >= count, 10, f"{count} lines")
    return logs(server, name, **params)


def test_a_500s_request_id_leads_to_its_log_lines(db: Backend, fname: str) -> None:
    server = db.server
    assert server.deploy(fname, LOG_LINES).status_code == 201
    assert server.invoke(fname, b"all good").status_code == 200
    failed = server.invoke(fname, b"!about to fail\nsecond line")
    assert failed.status_code == 500
    request_id = failed.json()["error"]["request_id"]
    assert request_id == failed.headers["x-request-id"]

    lines = until_logged(server, fname, 4, request_id=request_id)
    assert [(line["level"], line["source"], line["message"]) for line in lines] == [
        ("warn", "log", "from the log call"),
        ("info", "stderr", "!about to fail"),
        ("info", "stderr", "second line"),
        ("error", "platform", "500 function_error: Function error: " + _trap(failed)),
    ]
    assert {line["request_id"] for line in lines} == {request_id}
    assert all(line["timestamp"].endswith("+00:00") for line in lines)
    (row,) = invocations(server, fname, request_id=request_id)
    assert (row["id"], row["status"], row["trigger"], row["attempt"], row["version"]) == (
        request_id, 500, "http", 1, 1,
    )  # fmt: skip
    assert row["error"]["type"] == "function_error" and row["log_lines"] == 4
    assert row["duration_ms"] > 0

    warnings = logs(server, fname, level="warn")
    assert [line["message"] for line in warnings][-2:] == [
        "from the log call",
        lines[-1]["message"],
    ]
    assert len(logs(server, fname)) == 6  # the success's 2 lines, the failure's 4
    assert [row["status"] for row in invocations(server, fname)] == [500, 200]
    assert [row["status"] for row in invocations(server, fname, status="5xx")] == [500]
    assert invocations(server, fname, status="2xx", error_type="function_error") == []


def _trap(response: httpx.Response) -> str:
    message: str = response.json()["error"]["message"]
    return message.removeprefix("Function error: ")


def test_async_and_refused_invocations_get_rows(db: Backend, fname: str) -> None:
    server = db.server
    server.deploy(fname, LOG_LINES, {"content_type": "application/json"})
    queued = httpx.post(
        f"{server.url}/functions/v1/invoke/{fname}",
        content=b'"async"',
        headers={**server.anon_headers(), "prefer": "respond-async"},
    )
    assert queued.status_code == 202
    invocation = queued.json()["invocation_id"]
    bad = server.invoke(fname, b"{not json", {"content-type": "application/json"})
    assert bad.status_code == 400
    httpx.patch(
        f"{server.url}/functions/v1/functions/{fname}",
        json={"enabled": False},
        headers=server.service_headers(),
    )
    disabled = server.invoke(fname, b"{}")
    assert disabled.status_code == 404

    wait_until(lambda: len(invocations(server, fname)) == 3, 15, "three rows")
    rows = {row["id"]: row for row in invocations(server, fname)}
    assert (rows[invocation]["trigger"], rows[invocation]["status"]) == ("http_async", 200)
    refused = rows[bad.headers["x-request-id"]]
    assert (refused["status"], refused["error"]["type"], refused["version"]) == (
        400, "invalid_payload", None,
    )  # fmt: skip
    assert rows[disabled.headers["x-request-id"]]["error"]["type"] == "function_not_found"
    assert [line["message"] for line in logs(server, fname, request_id=invocation)] == [
        "from the log call",
        '"async"',
    ]


def test_retention_drops_the_oldest_first_at_the_bound(db: Backend, fname: str) -> None:
    """Bounds of this module's server: 6 lines and 4 invocations per function."""
    server = db.server
    server.deploy(fname, LOG_LINES)
    sent = []
    for n in range(6):
        response = server.invoke(fname, f"{n}-a\n{n}-b".encode())
        assert response.status_code == 200
        sent.append(response.headers["x-request-id"])

    def pruned() -> bool:
        rows = invocations(server, fname, limit=1000)
        lines = logs(server, fname, limit=1000)
        return [row["id"] for row in rows] == sent[:1:-1] and len(lines) == 6

    wait_until(pruned, 10, "the newest 4 invocations and 6 lines")
    kept = logs(server, fname, limit=1000)
    assert [(line["request_id"], line["message"]) for line in kept] == [
        (sent[4], "from the log call"), (sent[4], "4-a"), (sent[4], "4-b"),
        (sent[5], "from the log call"), (sent[5], "5-a"), (sent[5], "5-b"),
    ]  # fmt: skip


def test_the_routes_need_the_service_key_a_known_function_and_sane_filters(
    db: Backend, fname: str
) -> None:
    server = db.server
    server.deploy(fname, LOG_LINES)
    url = f"{server.url}/functions/v1/functions/{fname}"
    for path in ("/logs", "/invocations"):
        for headers in ({}, server.anon_headers()):
            assert httpx.get(url + path, headers=headers).status_code == 401
        missing = httpx.get(
            f"{server.url}/functions/v1/functions/{fname}-nope{path}",
            headers=server.service_headers(),
        )
        assert missing.status_code == 404
        assert missing.json()["error"]["type"] == "function_not_found"
    assert httpx.get(server.url + "/functions/v1/stats").status_code == 401
    for params in ({"level": "loud"}, {"since": "yesterday"}, {"limit": "0"}):
        refused = httpx.get(url + "/logs", params=params, headers=server.service_headers())
        assert refused.status_code == 400, params
        assert refused.json()["error"]["type"] == "invalid_payload"
    refused = httpx.get(
        url + "/invocations", params={"status": "teapot"}, headers=server.service_headers()
    )
    assert refused.status_code == 400
    assert get(server, f"/functions/v1/functions/{fname}/logs") == {
        "function": fname,
        "lines": [],
        "cursor": 0,
    }
    since = time.time()
    server.invoke(fname, b"after")
    lines = until_logged(server, fname, 2, since=str(since))
    assert [line["message"] for line in lines] == ["from the log call", "after"]
    assert logs(server, fname, until=str(since)) == []


def test_age_retention_drops_old_rows(start_server: ServerFactory, fname: str) -> None:
    env = {
        "WASMLET_LOG_RETENTION_S": "2", "WASMLET_INVOCATION_RETENTION_S": "2",
        "WASMLET_HISTORY_PRUNE_INTERVAL_S": "0.2",
    }  # fmt: skip
    with start_server(**env) as server:
        server.deploy(fname, LOG_LINES)
        server.invoke(fname, b"old")
        until_logged(server, fname, 2)
        time.sleep(2.5)
        server.invoke(fname, b"new")
        wait_until(lambda: len(invocations(server, fname)) == 1, 10, "old rows pruned")
        assert [line["message"] for line in logs(server, fname)] == ["from the log call", "new"]


def test_history_can_be_turned_off(start_server: ServerFactory, fname: str) -> None:
    with start_server(WASMLET_HISTORY="false") as server:
        server.deploy(fname, LOG_LINES)
        assert server.invoke(fname, b"!fails").status_code == 500
        time.sleep(0.3)
        assert logs(server, fname) == [] and invocations(server, fname) == []
        assert get(server, "/functions/v1/stats")["history"] is False
