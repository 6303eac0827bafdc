"""Keys: Bearer and apikey headers, public functions, keys kept out of logs."""

from __future__ import annotations

import httpx

from tests.support.build import wat
from tests.support.server import ServerProcess


def test_invoke_needs_a_key_unless_public(server: ServerProcess, fname: str) -> None:
    server.deploy(fname, wat("hello"))
    url = f"{server.url}/functions/v1/invoke/{fname}"
    assert httpx.post(url).status_code == 401
    assert httpx.post(url, headers={"authorization": "Bearer nope"}).status_code == 401
    assert httpx.post(url, headers={"apikey": server.anon_key}).status_code == 200
    assert httpx.post(url, headers=server.anon_headers()).status_code == 200
    assert httpx.post(url, headers=server.service_headers()).status_code == 200
    httpx.patch(
        f"{server.url}/functions/v1/functions/{fname}",
        json={"public": True},
        headers=server.service_headers(),
    )
    assert httpx.post(url).status_code == 200


def test_unauthenticated_caller_cannot_probe_private_names(server: ServerProcess) -> None:
    before = server.metric("functions_refused_total", error_type="unauthorized")
    response = httpx.post(f"{server.url}/functions/v1/invoke/nonexistent")
    assert response.status_code == 401
    assert server.metric("functions_refused_total", error_type="unauthorized") == before + 1
    log = server.wait_for_log(request_id=response.headers["x-request-id"])
    assert log["error_type"] == "unauthorized"


def test_keys_never_appear_in_logs(server: ServerProcess, fname: str) -> None:
    server.deploy(fname, wat("echo"))
    server.invoke(fname, b"x", headers={"apikey": server.anon_key})
    joined = "\n".join(server.lines)
    assert server.service_key not in joined
    assert server.anon_key not in joined


def test_keys_are_not_passed_to_the_function(server: ServerProcess, fname: str) -> None:
    server.deploy(fname, wat("hello"))
    # WASMLET_HTTP_HEADERS is built from the request minus authorization and apikey;
    # the env_dump example shows what the guest sees.
    from tests.support.build import build_c

    server.deploy(fname, build_c("env_dump"))
    response = server.invoke(fname, headers={"apikey": server.anon_key, "x-custom": "yes"})
    assert response.status_code == 200, response.text
    assert "x-custom" in response.text
    assert server.anon_key not in response.text
    assert server.service_key not in response.text
