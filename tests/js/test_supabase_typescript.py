"""The Supabase starter, deployed from its .ts file unchanged, called by Supabase's own
clients: supabase-py's functions client and @supabase/functions-js run by node."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest
from supabase_functions import SyncFunctionsClient

from tests.support.js import deploy_js
from tests.support.server import ServerProcess
from wasmlet.js.typescript import node_binary

ROOT = Path(__file__).resolve().parents[2]
NODE_CACHE = ROOT / ".cache" / "node"
INVOKE_SCRIPT = ROOT / "tests" / "support" / "functions_js_invoke.cjs"
STARTERS = ["hello_supabase.ts", "hello_supabase_fetch.ts"]


def _deploy_starter(server: ServerProcess, name: str, filename: str) -> None:
    source = (ROOT / "examples" / "ts" / filename).read_text(encoding="utf-8")
    response = deploy_js(server, name, source, filename=filename)
    assert response.status_code == 201, response.text


def _functions_js(server: ServerProcess, name: str, body: dict[str, Any]) -> dict[str, Any]:
    package = NODE_CACHE / "node_modules" / "@supabase" / "functions-js" / "package.json"
    if not package.is_file():
        pytest.fail(f"{package} is missing: run scripts/ensure-test-tools")
    done = subprocess.run(
        [
            str(node_binary()),
            str(INVOKE_SCRIPT),
            str(NODE_CACHE),
            f"{server.url}/functions/v1",
            server.anon_key,
            name,
            json.dumps(body),
        ],
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()
    result: dict[str, Any] = json.loads(done.stdout)
    return result


@pytest.mark.parametrize("filename", STARTERS)
def test_supabase_starter_ts_answers_supabase_py(
    server: ServerProcess, fname: str, filename: str
) -> None:
    _deploy_starter(server, fname, filename)
    with httpx.Client() as http:
        client = SyncFunctionsClient(
            url=f"{server.url}/functions/v1",
            headers={"Authorization": f"Bearer {server.anon_key}"},
            http_client=http,
        )
        data = client.invoke(fname, {"body": {"name": "Functions"}, "responseType": "json"})
    assert data == {"message": "Hello Functions!"}


@pytest.mark.parametrize("filename", STARTERS)
def test_supabase_starter_ts_answers_functions_js(
    server: ServerProcess, fname: str, filename: str
) -> None:
    _deploy_starter(server, fname, filename)
    result = _functions_js(server, fname, {"name": "Functions"})
    assert result == {"data": {"message": "Hello Functions!"}, "error": None}
