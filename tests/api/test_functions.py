"""Management routes: list, get, config changes, enable/disable, delete."""

from __future__ import annotations

import httpx

from tests.support.build import wat
from tests.support.server import ServerProcess


def _patch(server: ServerProcess, name: str, body: object) -> httpx.Response:
    return httpx.patch(
        f"{server.url}/functions/v1/functions/{name}", json=body, headers=server.service_headers()
    )


def test_get_and_list(server: ServerProcess, fname: str) -> None:
    server.deploy(fname, wat("hello"), {"timeout_ms": 1234})
    got = httpx.get(
        f"{server.url}/functions/v1/functions/{fname}", headers=server.service_headers()
    )
    assert got.status_code == 200
    assert got.json()["config"]["timeout_ms"] == 1234
    listed = httpx.get(server.url + "/functions/v1/functions", headers=server.service_headers())
    assert fname in {f["name"] for f in listed.json()["functions"]}


def test_disabled_function_is_404_until_enabled(server: ServerProcess, fname: str) -> None:
    server.deploy(fname, wat("hello"))
    assert server.invoke(fname).status_code == 200
    assert _patch(server, fname, {"enabled": False}).json()["enabled"] is False
    disabled = server.invoke(fname)
    assert disabled.status_code == 404
    assert disabled.json()["error"]["type"] == "function_not_found"
    supabase_route = httpx.post(f"{server.url}/functions/v1/{fname}", headers=server.anon_headers())
    assert supabase_route.status_code == 404
    _patch(server, fname, {"enabled": True})
    assert server.invoke(fname).status_code == 200


def test_patch_config_applies_to_next_invocation(server: ServerProcess, fname: str) -> None:
    server.deploy(fname, wat("infinite_loop"), {"timeout_ms": 300})
    first = server.invoke(fname)
    assert first.json()["error"]["message"] == "Function timeout after 0.3s"
    assert _patch(server, fname, {"config": {"timeout_ms": 200}}).status_code == 200
    second = server.invoke(fname)
    assert second.json()["error"]["message"] == "Function timeout after 0.2s"


def test_patch_with_config_null_changes_only_the_flat_fields(
    server: ServerProcess, fname: str
) -> None:
    """The schema allows `"config": null` (as deploy does); it means no nested changes."""
    server.deploy(fname, wat("hello"), {"allowed_hosts": ["https://api.example.com"]})
    response = _patch(server, fname, {"config": None, "timeout_ms": 2000})
    assert response.status_code == 200, response.text
    config = response.json()["config"]
    assert config["timeout_ms"] == 2000 and config["allowed_hosts"] == ["https://api.example.com"]


def test_patch_refuses_bad_config(server: ServerProcess, fname: str) -> None:
    server.deploy(fname, wat("hello"))
    for body in ({"memory_mb": 10**6}, {"enabled": "yes"}, ["not", "an", "object"]):
        response = _patch(server, fname, body)
        assert response.status_code == 400
        assert response.json()["error"]["type"] == "invalid_config"


def test_delete_then_404(server: ServerProcess, fname: str) -> None:
    server.deploy(fname, wat("hello"))
    deleted = httpx.delete(
        f"{server.url}/functions/v1/functions/{fname}", headers=server.service_headers()
    )
    assert deleted.status_code == 204
    assert server.invoke(fname).status_code == 404
    again = httpx.delete(
        f"{server.url}/functions/v1/functions/{fname}", headers=server.service_headers()
    )
    assert again.status_code == 404


def test_management_routes_need_the_service_key(server: ServerProcess, fname: str) -> None:
    server.deploy(fname, wat("hello"))
    for method, path in (
        ("GET", "/functions/v1/functions"),
        ("GET", f"/functions/v1/functions/{fname}"),
        ("PATCH", f"/functions/v1/functions/{fname}"),
        ("DELETE", f"/functions/v1/functions/{fname}"),
    ):
        response = httpx.request(method, server.url + path, headers=server.anon_headers())
        assert response.status_code == 401, (method, path)
    assert server.invoke(fname).status_code == 200
