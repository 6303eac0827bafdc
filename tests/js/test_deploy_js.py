"""Deploying JavaScript over HTTP and with the CLI, and everything refused with 400."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.support.js import JS_DIR, deploy_js, example
from tests.support.server import ServerProcess


def _names(server: ServerProcess) -> set[str]:
    response = httpx.get(server.url + "/functions/v1/functions", headers=server.service_headers())
    assert response.status_code == 200
    return {f["name"] for f in response.json()["functions"]}


def _refusal(response: httpx.Response, status: int = 400) -> dict[str, str]:
    assert response.status_code == status, response.text
    error: dict[str, str] = response.json()["error"]
    assert error["request_id"] == response.headers["x-request-id"]
    return error


def test_deploy_json_source_then_invoke(server: ServerProcess, fname: str) -> None:
    response = deploy_js(server, fname, example("hello"))
    assert response.status_code == 201, response.text
    record = response.json()
    assert record["name"] == fname
    assert record["version"] == 1
    invoked = server.invoke(fname)
    assert invoked.status_code == 200
    assert invoked.headers["content-type"] == "application/json"
    assert invoked.json() == {"message": "Hello, wasmlet!"}


def test_runtime_is_inferred_from_a_source_without_wasm(server: ServerProcess, fname: str) -> None:
    response = httpx.post(
        server.url + "/functions/v1/deploy",
        json={"name": fname, "source": "export const handler = () => 'inferred';"},
        headers=server.service_headers(),
        timeout=120,
    )
    assert response.status_code == 201, response.text
    assert server.invoke(fname).text == "inferred"


def test_deploy_multipart_js_file(server: ServerProcess, fname: str) -> None:
    response = httpx.post(
        server.url + "/functions/v1/deploy",
        data={"name": fname, "config": json.dumps({"timeout_ms": 2000})},
        files={"source": ("greet.js", example("throw_error").encode(), "text/javascript")},
        headers=server.service_headers(),
        timeout=120,
    )
    assert response.status_code == 201, response.text
    assert response.json()["config"]["timeout_ms"] == 2000
    failed = server.invoke(fname)
    assert failed.status_code == 500
    log = server.wait_for_log(request_id=failed.headers["x-request-id"], operation="invoke")
    # The uploaded file's name is the one stack traces show.
    assert "at handler (greet.js:4)" in log["stderr"]


def test_redeploy_is_a_new_version_with_the_new_code(server: ServerProcess, fname: str) -> None:
    assert deploy_js(server, fname, "export const handler = () => 'one';").status_code == 201
    second = deploy_js(server, fname, "export const handler = () => 'two';")
    assert second.status_code == 200
    assert second.json()["version"] == 2
    assert server.invoke(fname).text == "two"


def test_cli_deploys_a_js_file(server: ServerProcess, fname: str, tmp_path: Path) -> None:
    env = {**os.environ, "WASMLET_URL": server.url, "WASMLET_KEY": server.service_key}
    done = subprocess.run(
        [sys.executable, "-m", "wasmlet", "deploy", fname, str(JS_DIR / "hello.js")],
        capture_output=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert f"deployed {fname} version 1" in done.stdout.decode()
    invoked = subprocess.run(
        [sys.executable, "-m", "wasmlet", "invoke", fname],
        capture_output=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert invoked.returncode == 0, invoked.stderr
    assert json.loads(invoked.stdout) == {"message": "Hello, wasmlet!"}
    bad = tmp_path / "bad.js"
    bad.write_text("export function handler( {\n", encoding="utf-8")
    refused = subprocess.run(
        [sys.executable, "-m", "wasmlet", "deploy", f"{fname}-bad", str(bad)],
        capture_output=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert refused.returncode == 5  # ExitCode.INVALID_REQUEST
    assert "400 invalid_source" in refused.stderr.decode()
    assert "(bad.js: line 2, column 1)" in refused.stderr.decode()


SYNTAX_ERRORS = [
    ("export async function handler() {\n  return 1 +* 2;\n}\n", 2, 13, "unexpected token"),
    ('export function handler() {\n  const s = "open\n}\n', 2, 13, "unexpected end of string"),
    ("export function handler() {\n  return {a: 1;\n}\n", 2, 15, "expecting"),
    ("const x = 1;\nconst x = 2;\nexport const handler = () => x;\n", 2, 9, "redefinition"),
    ("export function handler() {\n  await go();\n}\n", 2, 3, "unexpected 'await'"),
]


@pytest.mark.parametrize(("source", "line", "column", "words"), SYNTAX_ERRORS)
def test_syntax_error_is_400_with_line_and_column_and_stores_nothing(
    server: ServerProcess, fname: str, source: str, line: int, column: int, words: str
) -> None:
    response = deploy_js(server, fname, source)
    error = _refusal(response)
    assert error["type"] == "invalid_source"
    assert error["message"].startswith("Invalid JavaScript: SyntaxError: ")
    assert words in error["message"]
    assert f"(handler.js: line {line}, column {column})" in error["message"]
    assert fname not in _names(server)
    log = server.wait_for_log(operation="deploy", function=fname)
    assert log["error_type"] == "invalid_source"


def test_a_failed_redeploy_keeps_the_running_version(server: ServerProcess, fname: str) -> None:
    assert deploy_js(server, fname, "export const handler = () => 'v1';").status_code == 201
    assert deploy_js(server, fname, "export const handler = ( => 'v2';").status_code == 400
    assert server.invoke(fname).text == "v1"


@pytest.mark.parametrize(
    ("source", "words"),
    [
        ("export function main() {}\n", "exports no function named 'handler'"),
        ("export const handler = 42;\n", "exports no function named 'handler'"),
        ("import helper from './helper.js';\nexport const handler = helper;\n",
         'import "./helper.js" refused (handler.js: line 1): only this one file is deployed'),
        ("throw new TypeError('config missing');\nexport const handler = () => 1;\n",
         "TypeError: config missing"),
        ("null.boom;\nexport const handler = () => 1;\n", "cannot read property 'boom' of null"),
    ],
    ids=["no-handler", "handler-not-a-function", "import", "top-level-throw", "top-level-trap"],
)  # fmt: skip
def test_a_module_that_cannot_load_is_400_invalid_source(
    server: ServerProcess, fname: str, source: str, words: str
) -> None:
    error = _refusal(deploy_js(server, fname, source))
    assert error["type"] == "invalid_source"
    assert words in error["message"]
    assert fname not in _names(server)


def test_top_level_code_that_never_finishes_is_refused_within_the_timeout(
    server: ServerProcess, fname: str
) -> None:
    source = "while (true) {}\nexport const handler = () => 1;\n"
    response = deploy_js(server, fname, source, {"timeout_ms": 500})
    error = _refusal(response)
    assert error["type"] == "invalid_source"
    assert "did not finish within 0.5s" in error["message"]


def test_a_trigger_naming_a_missing_export_is_400_invalid_trigger(
    server: ServerProcess, fname: str
) -> None:
    source = "export async function handler() { return 1; }\n"
    response = deploy_js(server, fname, source, triggers=[{"type": "http", "handler": "main"}])
    error = _refusal(response)
    assert error["type"] == "invalid_trigger"
    assert "'main'" in error["message"]


def test_a_trigger_may_name_the_export_to_call(server: ServerProcess, fname: str) -> None:
    source = "export const handler = () => 'handler';\nexport const main = () => 'main';\n"
    response = deploy_js(server, fname, source, triggers=[{"type": "http", "handler": "main"}])
    assert response.status_code == 201, response.text
    assert server.invoke(fname).text == "main"


@pytest.mark.parametrize(
    ("body", "status", "error_type"),
    [
        ({"runtime": "python", "source": "x"}, 400, "invalid_payload"),
        ({"runtime": "javascript"}, 400, "invalid_source"),
        ({"runtime": "javascript", "source": "   "}, 400, "invalid_source"),
        ({"runtime": "javascript", "source": 42}, 400, "invalid_source"),
    ],
    ids=["unknown-runtime", "no-source", "blank-source", "source-not-text"],
)
def test_malformed_javascript_deploys_are_400(
    server: ServerProcess, fname: str, body: dict[str, object], status: int, error_type: str
) -> None:
    response = httpx.post(
        server.url + "/functions/v1/deploy",
        json={"name": fname, **body},
        headers=server.service_headers(),
        timeout=60,
    )
    assert _refusal(response, status)["type"] == error_type


def test_invalid_name_is_refused_before_any_packaging(server: ServerProcess) -> None:
    error = _refusal(deploy_js(server, "Send Email", example("hello")))
    assert error["type"] == "invalid_name"


def test_multipart_source_that_is_not_utf8_is_400(server: ServerProcess, fname: str) -> None:
    response = httpx.post(
        server.url + "/functions/v1/deploy",
        data={"name": fname},
        files={"source": ("bad.js", b"export const handler = () => '\xff\xfe';", "text/plain")},
        headers=server.service_headers(),
        timeout=60,
    )
    assert _refusal(response)["type"] == "invalid_source"
