"""Versions and rollback over a real server: listing, rollback as a new version, the
triggers and schedule of the version rolled back to, the bound, and the refusals."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.support.appdb import Backend, backend, wait_until
from tests.support.js import deploy_js
from tests.support.server import ServerProcess
from tests.support.wasmgen import says

KEPT = 4
YEARLY = {"type": "schedule", "cron": "0 0 1 1 *", "timezone": "Europe/Paris"}


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Backend]:
    """A server of its own: a small bound, and an application database to trigger on."""
    data_dir = tmp_path_factory.mktemp("versions") / "data"
    with backend("sqlite", data_dir, WASMLET_VERSIONS_KEPT=str(KEPT)) as running:
        yield running


def _url(server: ServerProcess, name: str, what: str) -> str:
    return f"{server.url}/functions/v1/functions/{name}/{what}"


def versions(server: ServerProcess, name: str, **params: int) -> httpx.Response:
    return httpx.get(
        _url(server, name, "versions"), params=params, headers=server.service_headers()
    )


def rollback(server: ServerProcess, name: str, body: Any = None) -> httpx.Response:
    content = b"" if body is None else body if isinstance(body, bytes) else None
    return httpx.post(
        _url(server, name, "rollback"),
        content=content,
        json=None if content is not None else body,
        headers=server.service_headers(),
        timeout=60,
    )


def deploy(server: ServerProcess, name: str, text: str, **kwargs: Any) -> dict[str, Any]:
    response = server.deploy(name, says(text), {"public": True}, **kwargs)
    assert response.status_code in (200, 201), response.text
    record: dict[str, Any] = response.json()
    return record


def body_of(server: ServerProcess, name: str) -> str:
    response = server.invoke(name)
    assert response.status_code == 200, response.text
    return response.text


def test_versions_list_and_rollback_serve_the_old_body_as_a_new_version(
    db: Backend, fname: str
) -> None:
    server = db.server
    for n in (1, 2, 3):
        assert deploy(server, fname, f"body {n}")["version"] == n
    listing = versions(server, fname)
    assert listing.status_code == 200, listing.text
    page = listing.json()
    assert page["live_version"] == 3 and page["versions_kept"] == KEPT
    rows = page["versions"]
    assert [v["version"] for v in rows] == [3, 2, 1]
    assert [v["live"] for v in rows] == [True, False, False]
    assert {v["runtime"] for v in rows} == {"wasm"}
    assert rows[0]["size_bytes"] == len(says("body 3"))
    assert rows[0]["created_at"].endswith("+00:00") and "T" in rows[0]["created_at"]
    assert len({v["module_sha256"] for v in rows}) == 3

    back = rollback(server, fname)  # the default: the version before the live one
    assert back.status_code == 200, back.text
    assert back.json()["version"] == 4
    assert body_of(server, fname) == "body 2"
    newest = versions(server, fname).json()["versions"][0]
    assert newest["version"] == 4 and newest["live"] and newest["rolled_back_from"] == 2
    assert newest["module_sha256"] == rows[1]["module_sha256"]

    to_first = rollback(server, fname, {"version": 1})
    assert to_first.status_code == 200, to_first.text
    assert to_first.json()["version"] == 5
    assert body_of(server, fname) == "body 1"


def _capture_triggers(db: Backend, table: str) -> int:
    with sqlite3.connect(db.server.data_dir / "app.db", timeout=30) as conn:
        row = conn.execute(
            "SELECT COUNT(*) FROM sqlite_master WHERE type = 'trigger' AND tbl_name = ?",
            (table,),
        ).fetchone()
    return int(row[0])


def _schedules_of(server: ServerProcess, name: str) -> list[dict[str, Any]]:
    listing = httpx.get(server.url + "/functions/v1/schedules", headers=server.service_headers())
    assert listing.status_code == 200, listing.text
    return [s for s in listing.json()["schedules"] if s["function"] == name]


def test_rollback_restores_the_versions_triggers_and_schedule(db: Backend, fname: str) -> None:
    server = db.server
    table = f"items_{fname.replace('-', '_')}"
    db.app_rows(f"CREATE TABLE {table} (id INTEGER PRIMARY KEY)")
    on_insert = {"type": "database", "table": table, "events": ["INSERT"]}
    first = deploy(server, fname, "with triggers", triggers=[on_insert, YEARLY])
    assert [t["type"] for t in first["triggers"]] == ["database", "schedule"]
    assert _capture_triggers(db, table) > 0 and len(_schedules_of(server, fname)) == 1
    deploy(server, fname, "without", triggers=[])
    assert _capture_triggers(db, table) == 0 and _schedules_of(server, fname) == []

    back = rollback(server, fname, {"version": 1})
    assert back.status_code == 200, back.text
    assert back.json()["triggers"] == first["triggers"]
    assert _capture_triggers(db, table) > 0
    [schedule] = _schedules_of(server, fname)
    assert schedule["cron"] == YEARLY["cron"] and schedule["timezone"] == YEARLY["timezone"]

    db.app_rows(f"INSERT INTO {table} (id) VALUES (1)")

    def delivered() -> bool:
        page = httpx.get(_url(server, fname, "invocations"), headers=server.service_headers())
        return any(i["trigger"] == "database" for i in page.json()["invocations"])

    wait_until(delivered, 60, "the restored database trigger's invocation")


def test_the_bound_prunes_old_versions_never_the_live_one(db: Backend, fname: str) -> None:
    server = db.server
    for n in range(1, KEPT + 3):
        deploy(server, fname, f"body {n}")
    kept = [v["version"] for v in versions(server, fname).json()["versions"]]
    assert kept == list(range(KEPT + 2, 2, -1))  # the newest KEPT, the live one first
    pruned = rollback(server, fname, {"version": 1})
    assert pruned.status_code == 404, pruned.text
    assert pruned.json()["error"]["type"] == "not_found"
    assert "pruned" in pruned.json()["error"]["message"]
    assert body_of(server, fname) == f"body {KEPT + 2}"  # a refused rollback changes nothing
    oldest = rollback(server, fname, {"version": 3})
    assert oldest.status_code == 200, oldest.text
    assert body_of(server, fname) == "body 3"
    # The new version pruned one more: the rolled-back-to version itself is gone now.
    kept = [v["version"] for v in versions(server, fname).json()["versions"]]
    assert kept == list(range(KEPT + 3, 3, -1))


def test_versions_pages_with_a_cursor(db: Backend, fname: str) -> None:
    server = db.server
    for n in (1, 2, 3):
        deploy(server, fname, f"body {n}")
    first = versions(server, fname, limit=2).json()
    assert [v["version"] for v in first["versions"]] == [3, 2] and first["next_before"] == 2
    rest = versions(server, fname, limit=2, before=first["next_before"]).json()
    assert [v["version"] for v in rest["versions"]] == [1] and rest["next_before"] is None


def test_unknown_function_and_version_are_404(db: Backend, fname: str) -> None:
    server = db.server
    for response in (versions(server, fname), rollback(server, fname)):
        assert response.status_code == 404, response.text
        assert response.json()["error"]["type"] == "function_not_found"
    deploy(server, fname, "only")
    no_previous = rollback(server, fname)
    assert no_previous.status_code == 404
    assert no_previous.json()["error"]["type"] == "not_found"
    unknown = rollback(server, fname, {"version": 99})
    assert unknown.status_code == 404 and unknown.json()["error"]["type"] == "not_found"


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b"[1]",
        {"version": "2"},
        {"version": 0},
        {"version": True},
        {"version": 1.5},
        {"version": 2**31},
        {"to": 1},
    ],
    ids=["not-json", "not-object", "string", "zero", "bool", "float", "huge", "unknown-field"],
)
def test_malformed_rollback_body_is_400(db: Backend, fname: str, body: Any) -> None:
    server = db.server
    deploy(server, fname, "one")
    deploy(server, fname, "two")
    response = rollback(server, fname, body)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["type"] == "invalid_payload"
    assert body_of(server, fname) == "two"


def test_both_routes_need_the_service_key(db: Backend, fname: str) -> None:
    server = db.server
    deploy(server, fname, "one")
    for response in (
        httpx.get(_url(server, fname, "versions"), headers=server.anon_headers()),
        httpx.post(_url(server, fname, "rollback"), headers=server.anon_headers()),
        httpx.get(_url(server, fname, "versions")),
    ):
        assert response.status_code == 401, response.text


def test_a_rollback_whose_triggers_cannot_be_installed_changes_nothing(
    db: Backend, fname: str
) -> None:
    """The deploy path's refusal: v1's table is gone, so v1 cannot come back; v2 serves on."""
    server = db.server
    table = f"gone_{fname.replace('-', '_')}"
    db.app_rows(f"CREATE TABLE {table} (id INTEGER PRIMARY KEY)")
    deploy(server, fname, "one", triggers=[{"type": "database", "table": table}, YEARLY])
    deploy(server, fname, "two", triggers=[])
    db.app_rows(f"DROP TABLE {table}")
    refused = rollback(server, fname, {"version": 1})
    assert refused.status_code == 400, refused.text
    assert refused.json()["error"]["type"] == "invalid_trigger"
    assert body_of(server, fname) == "two"
    assert _schedules_of(server, fname) == []
    listing = versions(server, fname).json()
    assert listing["live_version"] == 2 and len(listing["versions"]) == 2


def test_javascript_versions_show_their_runtime_and_roll_back(db: Backend, fname: str) -> None:
    server = db.server
    for n in (1, 2):
        source = f"export async function handler(req) {{ return {{ js: {n} }}; }}"
        deployed = deploy_js(server, fname, source, {"public": True})
        assert deployed.status_code in (200, 201), deployed.text
    rows = versions(server, fname).json()["versions"]
    assert [(v["version"], v["runtime"]) for v in rows] == [(2, "javascript"), (1, "javascript")]
    assert rollback(server, fname).status_code == 200
    assert server.invoke(fname).json() == {"js": 1}
