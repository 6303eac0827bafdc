"""Deploy over HTTP: JSON and multipart, versions, and everything refused with 400."""

from __future__ import annotations

import base64
import json

import httpx
import pytest

from tests.support.build import wat
from tests.support.server import ServerProcess


def _names(server: ServerProcess) -> set[str]:
    response = httpx.get(server.url + "/functions/v1/functions", headers=server.service_headers())
    assert response.status_code == 200
    return {f["name"] for f in response.json()["functions"]}


def test_deploy_json_then_redeploy_makes_version_two(server: ServerProcess, fname: str) -> None:
    first = server.deploy(fname, wat("hello"))
    assert first.status_code == 201, first.text
    assert first.json()["version"] == 1
    second = server.deploy(fname, wat("echo"))
    assert second.status_code == 200, second.text
    assert second.json()["version"] == 2
    assert server.invoke(fname, b"ping").content == b"ping"
    log = server.wait_for_log(operation="deploy", function=fname, version=2)
    assert log["level"] == "INFO"


def test_deploy_multipart_upload(server: ServerProcess, fname: str) -> None:
    response = httpx.post(
        server.url + "/functions/v1/deploy",
        data={"name": fname, "config": json.dumps({"timeout_ms": 2000})},
        files={"wasm": ("hello.wasm", wat("hello"), "application/wasm")},
        headers=server.service_headers(),
    )
    assert response.status_code == 201, response.text
    assert response.json()["config"]["timeout_ms"] == 2000
    assert server.invoke(fname).content == b"Hello, wasmlet!"


@pytest.mark.parametrize(
    "name",
    ["Send Email", "send email", "1abc", "UPPER", "a" * 64, "dots.no", "", "deploy", "functions"],
)
def test_invalid_or_reserved_name_is_400_and_stores_nothing(
    server: ServerProcess, name: str
) -> None:
    before = _names(server)
    response = server.deploy(name, wat("hello"))
    assert response.status_code == 400
    body = response.json()["error"]
    assert body["type"] == "invalid_name"
    assert body["request_id"] == response.headers["x-request-id"]
    assert _names(server) == before


def test_spec_example_name_with_space_says_so(server: ServerProcess) -> None:
    response = server.deploy("Send Email", b"\0asm\x01\0\0\0")
    assert response.status_code == 400
    assert "contains space" in response.json()["error"]["message"]


@pytest.mark.parametrize(
    "wasm",
    [
        b"",
        b"not wasm at all",
        b"\0asm\x01\0\0\0\xff\xff\xff",  # header, then garbage
        wat("hello")[:-7],  # truncated
    ],
    ids=["empty", "text", "garbage-after-header", "truncated"],
)
def test_corrupted_binary_is_400_invalid_wasm_and_stores_nothing(
    server: ServerProcess, fname: str, wasm: bytes
) -> None:
    refused = server.metric("functions_deploys_total", outcome="refused")
    response = server.deploy(fname, wasm)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["type"] == "invalid_wasm"
    assert server.metric("functions_deploys_total", outcome="refused") == refused + 1
    log = server.wait_for_log(operation="deploy", function=fname, error_type="invalid_wasm")
    assert log["level"] == "WARNING"
    assert fname not in _names(server)
    got = httpx.get(
        f"{server.url}/functions/v1/functions/{fname}", headers=server.service_headers()
    )
    assert got.status_code == 404


def test_module_that_is_not_a_wasi_command_is_refused(server: ServerProcess, fname: str) -> None:
    library = wat('(module (memory (export "memory") 1) (func (export "add")))')
    response = server.deploy(fname, library)
    assert response.status_code == 400
    assert "_start" in response.json()["error"]["message"]


def test_module_with_unknown_import_is_refused(server: ServerProcess, fname: str) -> None:
    module = wat(
        '(module (import "env" "socket" (func)) (memory (export "memory") 1)'
        ' (func (export "_start")))'
    )
    response = server.deploy(fname, module)
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_wasm"
    assert "socket" in response.json()["error"]["message"]


def test_bad_base64_is_invalid_wasm(server: ServerProcess, fname: str) -> None:
    response = httpx.post(
        server.url + "/functions/v1/deploy",
        json={"name": fname, "wasm": "%%%not-base64%%%"},
        headers=server.service_headers(),
    )
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_wasm"


def test_malformed_json_body_is_invalid_payload(server: ServerProcess) -> None:
    response = httpx.post(
        server.url + "/functions/v1/deploy",
        content=b"{nope",
        headers={**server.service_headers(), "content-type": "application/json"},
    )
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_payload"


@pytest.mark.parametrize(
    "triggers",
    [[{"type": "carrier-pigeon"}], "http", [{"no": "type"}]],
    ids=["unknown-type", "not-a-list", "missing-type"],
)
def test_invalid_trigger_is_400(server: ServerProcess, fname: str, triggers: object) -> None:
    body = {"name": fname, "wasm": base64.b64encode(wat("hello")).decode(), "triggers": triggers}
    response = httpx.post(
        server.url + "/functions/v1/deploy", json=body, headers=server.service_headers()
    )
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_trigger"
    assert fname not in _names(server)


@pytest.mark.parametrize(
    "config",
    [
        {"timeout_ms": 10_000_000},
        {"memory_mb": 100_000},
        {"max_concurrency": 100_000},
        {"timeout_ms": -1},
        {"unknown_field": 1},
    ],
    ids=["timeout-over-max", "memory-over-max", "concurrency-over-global", "negative", "unknown"],
)
def test_config_outside_operator_maximums_is_invalid_config(
    server: ServerProcess, fname: str, config: dict[str, object]
) -> None:
    response = server.deploy(fname, wat("hello"), config)
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_config"
    assert fname not in _names(server)


def test_deploy_needs_the_service_key(server: ServerProcess, fname: str) -> None:
    body = {"name": fname, "wasm": base64.b64encode(wat("hello")).decode()}
    for headers in ({}, server.anon_headers(), {"authorization": "Bearer wrong"}):
        response = httpx.post(server.url + "/functions/v1/deploy", json=body, headers=headers)
        assert response.status_code == 401
        assert response.json()["error"]["type"] == "unauthorized"
    assert fname not in _names(server)
