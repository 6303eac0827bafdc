"""Secrets through the real server: into C and JS functions, never out of the platform
(logs, history, API answers, workers' environments, the database file), across a restart."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.api.test_worker_isolation import _environ
from tests.api.test_workers import worker_pids
from tests.support.build import build_c
from tests.support.js import deploy_js
from tests.support.server import ServerProcess, running_server

TOKEN = "tok-9b1e5d7c3a0f4e62"
SHARED_SECRET = "shared-from-secrets-51c0"
LEAKER = """
export async function handler(req) {
  const token = Deno.env.get("API_TOKEN");
  console.log("the token is " + token);
  if ((await req.text()) === "fail") throw new Error("failed holding " + token);
  return { token, shared: Deno.env.get("SHARED"), missing: Deno.env.get("NOPE") ?? null };
}
"""


@contextmanager
def _serving(data_dir: Path) -> Iterator[ServerProcess]:
    yield from running_server(data_dir)


def _secrets(server: ServerProcess, method: str, path: str = "", **kw: object) -> httpx.Response:
    return httpx.request(
        method,
        f"{server.url}/functions/v1/secrets{path}",
        headers=server.service_headers(),
        timeout=30,
        **kw,  # type: ignore[arg-type]
    )


def _history(server: ServerProcess, name: str, request_id: str) -> str:
    """The stored log lines of one invocation, once they are written."""
    deadline = time.monotonic() + 30
    while True:
        answer = httpx.get(
            f"{server.url}/functions/v1/functions/{name}/logs",
            params={"request_id": request_id},
            headers=server.service_headers(),
            timeout=30,
        )
        assert answer.status_code == 200, answer.text
        if "the token is" in answer.text:
            return answer.text
        assert time.monotonic() < deadline, answer.text
        time.sleep(0.05)


def _everything_under(path: Path) -> bytes:
    return b"".join(f.read_bytes() for f in sorted(path.rglob("*")) if f.is_file())


def test_secrets_reach_functions_and_nothing_else_and_survive_a_restart(
    tmp_path: Path, fname: str
) -> None:
    data_dir = tmp_path / "data"
    c_name = fname[:50] + "-c"
    with _serving(data_dir) as server:
        pairs = [{"name": "API_TOKEN", "value": TOKEN}, {"name": "SHARED", "value": SHARED_SECRET}]
        put = _secrets(server, "PUT", json=pairs)
        assert put.status_code == 200, put.text
        assert [s["name"] for s in put.json()["secrets"]] == ["API_TOKEN", "SHARED"]
        assert all(len(s["digest"]) == 64 and s["updated_at"] for s in put.json()["secrets"])
        # The function's own env wins over a secret of the same name.
        config = {"env": {"SHARED": "own"}}
        assert deploy_js(server, fname, LEAKER, config).status_code == 201
        assert server.deploy(c_name, build_c("env_dump")).status_code == 201

        answered = server.invoke(fname)
        assert answered.status_code == 200, answered.text
        assert answered.json() == {"token": TOKEN, "shared": "own", "missing": None}
        assert f"API_TOKEN={TOKEN}" in server.invoke(c_name).text.splitlines()
        failed = server.invoke(fname, b"fail")
        assert failed.status_code == 500 and TOKEN not in failed.text, failed.text

        stored = _history(server, fname, answered.headers["x-request-id"])
        assert TOKEN not in stored and "[redacted]" in stored
        failed_lines = _history(server, fname, failed.headers["x-request-id"])
        assert TOKEN not in failed_lines and "failed holding [redacted]" in failed_lines
        answers = [
            _secrets(server, "GET"),
            httpx.get(f"{server.url}/functions/v1/functions/{fname}",
                      headers=server.service_headers(), timeout=30),
            httpx.get(f"{server.url}/functions/v1/functions", headers=server.service_headers(),
                      timeout=30),
        ]  # fmt: skip
        for answer in answers:
            assert answer.status_code == 200 and TOKEN not in answer.text, answer.text
        for pid in worker_pids(server):
            assert not [v for v in _environ(pid).values() if TOKEN in v]
        server.wait_for_log(request_id=failed.headers["x-request-id"], operation="invoke")
        assert server.json_logs() and not [line for line in server.lines if TOKEN in line]

        assert _secrets(server, "DELETE", "/SHARED").status_code == 204
        assert _secrets(server, "DELETE", "/SHARED").status_code == 404
    on_disk = _everything_under(data_dir)
    assert TOKEN.encode() not in on_disk and SHARED_SECRET.encode() not in on_disk

    with _serving(data_dir) as restarted:
        listed = _secrets(restarted, "GET").json()["secrets"]
        assert [s["name"] for s in listed] == ["API_TOKEN"]
        again = restarted.invoke(fname)
        assert again.json() == {"token": TOKEN, "shared": "own", "missing": None}


def test_secrets_need_the_service_key_and_valid_entries(server: ServerProcess) -> None:
    url = f"{server.url}/functions/v1/secrets"
    body = [{"name": "A_NAME", "value": "hidden-value-0000"}]
    assert httpx.put(url, json=body, headers=server.anon_headers()).status_code == 401
    assert httpx.get(url, headers=server.anon_headers()).status_code == 401
    refused = httpx.put(
        url, json=[{"name": "WASMLET_X", "value": "hidden-value-0000"}],
        headers=server.service_headers(),
    )  # fmt: skip
    assert refused.status_code == 400
    assert refused.json()["error"]["type"] == "invalid_config"
    assert "hidden-value-0000" not in refused.text
    not_json = httpx.put(url, content=b"{", headers=server.service_headers())
    assert not_json.status_code == 400, not_json.text
    assert json.loads(not_json.text)["error"]["type"] == "invalid_config"
