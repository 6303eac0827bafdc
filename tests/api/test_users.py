"""User JWTs through the real server: refused with the reason, the `sub` in the log line and
the history, handed to C and JS functions as headers, never spoofable, ignored when a
function turns verify_jwt off; RS256 and ES256 keys come from a JWKS served on 127.0.0.1."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from supabase_functions import SyncFunctionsClient

from tests.support.build import build_c
from tests.support.js import deploy_js
from tests.support.server import ServerProcess, running_server
from tests.support.users import (
    HS_SECRET,
    JwksServer,
    SigningKey,
    claims,
    ec_key,
    hs256,
    jwks_server,
    rsa_key,
    signed,
    unsigned,
)

WHO_AM_I = """
export async function handler(req) {
  return {
    user: req.headers.get("x-wasmlet-user-id"),
    claims: JSON.parse(req.headers.get("x-wasmlet-claims") ?? "null"),
    other: req.headers.get("x-other"),
  };
}
"""


@dataclass
class Setup:
    server: ServerProcess
    jwks: JwksServer
    rsa: SigningKey
    ec: SigningKey


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    rsa, ec = rsa_key(), ec_key()
    with jwks_server(rsa, ec) as jwks:
        env = {"WASMLET_JWT_SECRET": HS_SECRET, "WASMLET_JWT_JWKS_URL": jwks.url}
        for server in running_server(tmp_path_factory.mktemp("users"), **env):
            yield Setup(server, jwks, rsa, ec)


def _call(server: ServerProcess, name: str, token: str | None, **headers: str) -> httpx.Response:
    """Supabase's way: the anon key in `apikey`, the user's JWT as the bearer token."""
    sent = {"apikey": server.anon_key, **headers}
    if token is not None:
        sent["authorization"] = f"Bearer {token}"
    return httpx.post(
        f"{server.url}/functions/v1/invoke/{name}", content=b"{}", headers=sent, timeout=60
    )


def _history(server: ServerProcess, name: str, request_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while True:
        answer = httpx.get(
            f"{server.url}/functions/v1/functions/{name}/invocations",
            params={"request_id": request_id},
            headers=server.service_headers(),
            timeout=30,
        )
        assert answer.status_code == 200, answer.text
        rows: list[dict[str, Any]] = answer.json()["invocations"]
        if rows:
            return rows[0]
        assert time.monotonic() < deadline, f"no history row for {request_id}"
        time.sleep(0.05)


def _guest_headers(env_dump: str) -> dict[str, str]:
    """The request headers a WASI guest got, from the env_dump example's output."""
    env = dict(line.split("=", 1) for line in env_dump.splitlines() if "=" in line)
    headers: dict[str, str] = json.loads(env["WASMLET_HTTP_HEADERS"])
    return headers


def test_bad_tokens_are_refused_with_the_reason(setup: Setup, fname: str) -> None:
    server = setup.server
    assert deploy_js(server, fname, WHO_AM_I).status_code == 201
    cases = {
        "has expired": hs256(claims(expires_in=-3600)),
        "signature does not verify": hs256(claims(), secret="not-the-secret-0123456789abcdef-xyz"),
        "not for this audience": hs256({**claims(), "aud": "service_role"}),
        "algorithm 'none' is not allowed": unsigned(claims()),
        "not a JWT": "made-up-token",
        "is over 8192 characters": "x" * 9000,
    }
    for reason, token in cases.items():
        answer = _call(server, fname, token)
        assert answer.status_code == 401, (reason, answer.text)
        error = answer.json()["error"]
        assert error["type"] == "unauthorized" and error["retriable"] is False
        assert error["message"].startswith("Invalid JWT: ") and reason in error["message"]
        assert error["errors"][0]["field"] == "headers.authorization"
        line = server.wait_for_log(request_id=answer.headers["x-request-id"])
        assert line["user_id"] is None and line["status"] == 401
        assert token[:40] not in json.dumps(line)


def test_a_valid_token_names_the_user_in_the_function_log_and_history(
    setup: Setup, fname: str
) -> None:
    server = setup.server
    assert deploy_js(server, fname, WHO_AM_I).status_code == 201
    user = "8f14e45f-ceea-467f-a0e6-2f1c3c9f1a11"
    token = hs256(claims(user, email="ada@example.test", role="authenticated"))
    answer = _call(server, fname, token, **{"x-other": "kept"})
    assert answer.status_code == 200, answer.text
    seen = answer.json()
    assert seen["user"] == user and seen["other"] == "kept"
    assert seen["claims"]["sub"] == user and seen["claims"]["email"] == "ada@example.test"
    assert seen["claims"]["aud"] == "authenticated"
    request_id = answer.headers["x-request-id"]
    line = server.wait_for_log(request_id=request_id, operation="invoke")
    assert line["user_id"] == user and line["function"] == fname
    assert _history(server, fname, request_id)["user_id"] == user
    filtered = httpx.get(
        f"{server.url}/functions/v1/functions/{fname}/invocations",
        params={"user_id": user},
        headers=server.service_headers(),
        timeout=30,
    ).json()["invocations"]
    assert [row["id"] for row in filtered] == [request_id]


def test_keys_alone_are_anonymous_and_spoofed_identity_headers_are_dropped(
    setup: Setup, fname: str
) -> None:
    server = setup.server
    assert deploy_js(server, fname, WHO_AM_I).status_code == 201
    spoof = {"x-wasmlet-user-id": "admin", "x-wasmlet-claims": '{"role": "service_role"}'}
    for authorization in (None, server.anon_key, server.service_key):
        answer = _call(server, fname, authorization, **spoof)
        assert answer.status_code == 200, answer.text
        assert answer.json() == {"user": None, "claims": None, "other": None}
        line = server.wait_for_log(request_id=answer.headers["x-request-id"], operation="invoke")
        assert line["user_id"] is None
    # With a valid token the platform's headers win over the client's.
    answer = _call(server, fname, hs256(claims("real-user")), **spoof)
    assert answer.json()["user"] == "real-user"
    assert answer.json()["claims"]["sub"] == "real-user"


def test_rs256_and_es256_tokens_verify_through_the_jwks(setup: Setup, fname: str) -> None:
    server = setup.server
    assert deploy_js(server, fname, WHO_AM_I).status_code == 201
    for key in (setup.rsa, setup.ec):
        answer = _call(server, fname, signed(key, claims(f"{key.algorithm}-user")))
        assert answer.status_code == 200, answer.text
        assert answer.json()["user"] == f"{key.algorithm}-user"
    forged = signed(rsa_key(setup.rsa.kid), claims("intruder"))
    refused = _call(server, fname, forged)
    assert refused.status_code == 401 and "signature" in refused.json()["error"]["message"]
    unknown = _call(server, fname, signed(ec_key("not-published"), claims()))
    assert unknown.status_code == 401 and "no ES256 key" in unknown.json()["error"]["message"]


def test_verify_jwt_off_ignores_the_token(setup: Setup, fname: str) -> None:
    server = setup.server
    assert deploy_js(server, fname, WHO_AM_I, {"verify_jwt": False}).status_code == 201
    for token in (hs256(claims("ignored-user")), hs256(claims(expires_in=-3600)), "junk"):
        answer = _call(server, fname, token, **{"x-wasmlet-user-id": "spoofed"})
        assert answer.status_code == 200, answer.text
        assert answer.json() == {"user": None, "claims": None, "other": None}
        line = server.wait_for_log(request_id=answer.headers["x-request-id"], operation="invoke")
        assert line["user_id"] is None
        assert _history(server, fname, answer.headers["x-request-id"])["user_id"] is None


def test_a_wasi_function_sees_the_user_in_its_request_headers(setup: Setup, fname: str) -> None:
    server = setup.server
    assert server.deploy(fname, build_c("env_dump")).status_code == 201
    answer = _call(server, fname, hs256(claims("wasi-user")), **{"x-wasmlet-user-id": "spoofed"})
    assert answer.status_code == 200, answer.text
    headers = _guest_headers(answer.text)
    assert headers["x-wasmlet-user-id"] == "wasi-user"
    assert json.loads(headers["x-wasmlet-claims"])["sub"] == "wasi-user"
    assert "authorization" not in headers and "apikey" not in headers


def test_an_async_invocation_keeps_the_user(setup: Setup, fname: str) -> None:
    server = setup.server
    assert server.deploy(fname, build_c("env_dump")).status_code == 201
    queued = _call(server, fname, hs256(claims("async-user")), prefer="respond-async")
    assert queued.status_code == 202, queued.text
    location = server.url + queued.json()["location"]
    deadline = time.monotonic() + 90
    while True:
        state = httpx.get(location, headers=server.anon_headers(), timeout=30).json()
        if state["status"] in ("done", "dead"):
            break
        assert time.monotonic() < deadline, state
        time.sleep(0.1)
    assert state["status"] == "done", state
    assert state["user_id"] == "async-user"
    assert _guest_headers(state["result"]["body"]["text"])["x-wasmlet-user-id"] == "async-user"
    invocation_id = queued.json()["invocation_id"]
    assert _history(server, fname, invocation_id)["user_id"] == "async-user"


def test_supabase_client_with_a_user_session(setup: Setup, fname: str) -> None:
    server = setup.server
    assert deploy_js(server, fname, WHO_AM_I).status_code == 201
    with httpx.Client() as http:
        client = SyncFunctionsClient(
            url=f"{server.url}/functions/v1",
            headers={"apikey": server.anon_key},
            http_client=http,
        )
        client.set_auth(hs256(claims("supabase-user")))
        data = client.invoke(fname, {"body": {}, "responseType": "json"})
    assert isinstance(data, dict) and data["user"] == "supabase-user"


def test_verify_jwt_is_validated_in_deploy_and_patch(setup: Setup, fname: str) -> None:
    server = setup.server
    refused = deploy_js(server, fname, WHO_AM_I, {"verify_jwt": "no"})
    assert refused.status_code == 400, refused.text
    error = refused.json()["error"]
    assert error["type"] == "invalid_config" and "verify_jwt" in error["message"]
    assert deploy_js(server, fname, WHO_AM_I).status_code == 201
    url = f"{server.url}/functions/v1/functions/{fname}"
    got = httpx.get(url, headers=server.service_headers(), timeout=30).json()
    assert got["config"]["verify_jwt"] is True
    for bad in (1, "false", None):
        answer = httpx.patch(
            url, json={"config": {"verify_jwt": bad}}, headers=server.service_headers(), timeout=30
        )
        assert answer.status_code == 400, (bad, answer.text)
        assert answer.json()["error"]["type"] == "invalid_config"
    patched = httpx.patch(
        url, json={"config": {"verify_jwt": False}}, headers=server.service_headers(), timeout=30
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["config"]["verify_jwt"] is False
    assert _call(server, fname, "junk").status_code == 200


def test_without_a_configured_verifier_a_token_is_refused(tmp_path: Path, fname: str) -> None:
    for server in running_server(tmp_path / "data"):
        assert deploy_js(server, fname, WHO_AM_I).status_code == 201
        answer = _call(server, fname, hs256(claims()))
        assert answer.status_code == 401
        assert "no verifier is configured" in answer.json()["error"]["message"]
        assert _call(server, fname, None).status_code == 200
