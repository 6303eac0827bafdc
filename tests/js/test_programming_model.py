"""The JavaScript programming model through the real server: the request a handler
gets, the responses it may return, and the globals it can use."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from tests.support.js import deploy_js, example
from tests.support.server import ServerProcess


def _deployed(server: ServerProcess, name: str, source: str, **config: Any) -> None:
    response = deploy_js(server, name, source, config or None)
    assert response.status_code == 201, response.text


def _call(
    server: ServerProcess,
    name: str,
    method: str = "POST",
    path: str = "",
    content: bytes = b"",
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    return httpx.request(
        method,
        f"{server.url}/functions/v1/{name}{path}",
        content=content,
        headers={**server.anon_headers(), **(headers or {})},
        timeout=30,
    )


def test_request_method_path_query_headers_and_json(server: ServerProcess, fname: str) -> None:
    source = """
export async function handler(req) {
  return {
    method: req.method,
    path: req.path,
    url: req.url,
    query: req.query,
    tags: req.searchParams.getAll("tag"),
    header: req.headers.get("X-Trace"),
    hidden: req.headers.get("authorization"),
    body: await req.json(),
  };
}
"""
    _deployed(server, fname, source)
    response = _call(
        server,
        fname,
        "PUT",
        "/users/7?name=Ada+L&tag=a&tag=b%20c",
        json.dumps({"n": [1, 2]}).encode(),
        {"x-trace": "abc", "content-type": "application/json"},
    )
    assert response.status_code == 200, response.text
    assert response.json() == {
        "method": "PUT",
        "path": "/users/7",
        "url": f"http://127.0.0.1:{server.port}/functions/v1/{fname}/users/7"
        "?name=Ada+L&tag=a&tag=b%20c",
        "query": {"name": "Ada L", "tag": "b c"},
        "tags": ["a", "b c"],
        "header": "abc",
        "hidden": None,
        "body": {"n": [1, 2]},
    }


def test_request_text_and_bytes(server: ServerProcess, fname: str) -> None:
    source = """
export async function handler(req) {
  const text = await req.text();
  const bytes = await req.bytes();
  return { text, length: bytes.length, first: bytes[0] };
}
"""
    _deployed(server, fname, source)
    body = "héllo ✓".encode()
    response = server.invoke(fname, body)
    assert response.json() == {"text": "héllo ✓", "length": len(body), "first": body[0]}


def test_response_like_object_sets_status_and_headers(server: ServerProcess, fname: str) -> None:
    _deployed(server, fname, example("echo"))
    response = _call(server, fname, "POST", "/a?x=1", b"plain")
    assert response.status_code == 201
    assert response.headers["x-echo"] == "yes"
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"method": "POST", "path": "/a", "query": {"x": "1"}, "body": "plain"}


def test_response_class_with_repeated_headers(server: ServerProcess, fname: str) -> None:
    source = """
export function handler() {
  const headers = new Headers({ "content-type": "text/csv" });
  headers.append("set-cookie", "a=1");
  headers.append("set-cookie", "b=2");
  return new Response("x,y\\n1,2\\n", { status: 202, headers });
}
"""
    _deployed(server, fname, source)
    response = server.invoke(fname)
    assert response.status_code == 202
    assert response.headers["content-type"] == "text/csv"
    assert response.headers.get_list("set-cookie") == ["a=1", "b=2"]
    assert response.text == "x,y\n1,2\n"


@pytest.mark.parametrize(
    ("returned", "content_type", "body"),
    [
        ("({ ok: true })", "application/json", b'{"ok":true}'),
        ("[1, 'two', null]", "application/json", b'[1,"two",null]'),
        ("42", "application/json", b"42"),
        ("'plain text'", "text/plain; charset=utf-8", b"plain text"),
        ("new Uint8Array([0, 255, 7])", "application/octet-stream", b"\x00\xff\x07"),
        ("undefined", "text/plain; charset=utf-8", b""),
        ("Response.json({ made: 'by Response.json' })", "application/json",
         b'{"made":"by Response.json"}'),
        ("({ status: 'active', count: 2 })", "application/json", b'{"status":"active","count":2}'),
    ],
    ids=["object", "array", "number", "string", "bytes", "undefined", "response-json",
         "data-with-status-field"],
)  # fmt: skip
def test_plain_return_values(
    server: ServerProcess, fname: str, returned: str, content_type: str, body: bytes
) -> None:
    _deployed(server, fname, f"export async function handler() {{ return {returned}; }}\n")
    response = server.invoke(fname)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == content_type
    assert response.content == body


def test_invalid_status_in_a_response_like_value_is_data(server: ServerProcess, fname: str) -> None:
    # A plain object whose "status" is not an integer is data, sent as JSON.
    _deployed(server, fname, "export const handler = () => ({ status: 'ok', body: 1 });\n")
    response = server.invoke(fname)
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "body": 1}


def test_response_with_out_of_range_status_is_a_function_error(
    server: ServerProcess, fname: str
) -> None:
    _deployed(server, fname, "export const handler = () => new Response('x', { status: 99 });\n")
    response = server.invoke(fname)
    assert response.status_code == 500
    log = server.wait_for_log(request_id=response.headers["x-request-id"], operation="invoke")
    assert "RangeError: Response: invalid status 99" in log["stderr"]


def test_default_export_and_fetch_object_are_handlers(server: ServerProcess, fname: str) -> None:
    _deployed(server, fname, "export default async (req) => req.method;\n")
    assert server.invoke(fname).text == "POST"
    other = f"{fname}-fetch"
    _deployed(server, other, "export default { fetch: (req) => new Response('fetched') };\n")
    assert server.invoke(other).text == "fetched"


def test_env_from_config_and_request_metadata(server: ServerProcess, fname: str) -> None:
    source = """
export function handler() {
  return {
    greeting: process.env.GREETING,
    deno: Deno.env.get("GREETING"),
    fn: process.env.WASMLET_FUNCTION,
    trigger: process.env.WASMLET_TRIGGER,
    home: process.env.HOME ?? null,
  };
}
"""
    _deployed(server, fname, source, env={"GREETING": "hi"})
    assert server.invoke(fname).json() == {
        "greeting": "hi",
        "deno": "hi",
        "fn": fname,
        "trigger": "http",
        "home": None,
    }


def test_each_invocation_starts_from_the_deployed_state(server: ServerProcess, fname: str) -> None:
    source = """
let calls = 0;
const loadedAt = Date.now();
export function handler() {
  calls += 1;
  return { calls, random: Math.random(), uuid: crypto.randomUUID(), loadedAt };
}
"""
    _deployed(server, fname, source)
    first, second = server.invoke(fname).json(), server.invoke(fname).json()
    # Module state does not leak from one invocation into the next ...
    assert first["calls"] == second["calls"] == 1
    # ... top-level code ran once, at deploy ...
    assert first["loadedAt"] == second["loadedAt"]
    # ... and randomness is fresh each time, not frozen into the snapshot.
    assert first["random"] != second["random"]
    assert first["uuid"] != second["uuid"]


def test_timers_and_promises(server: ServerProcess, fname: str) -> None:
    source = """
export async function handler() {
  const order = [];
  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
  const started = performance.now();
  queueMicrotask(() => order.push("micro"));
  const cancelled = setTimeout(() => order.push("cancelled"), 5);
  clearTimeout(cancelled);
  await Promise.all([
    sleep(30).then(() => order.push("30")),
    sleep(10).then(() => order.push("10")),
  ]);
  return { order, waited: performance.now() - started >= 29 };
}
"""
    _deployed(server, fname, source)
    assert server.invoke(fname).json() == {"order": ["micro", "10", "30"], "waited": True}


def test_a_promise_that_never_settles_is_a_function_error(
    server: ServerProcess, fname: str
) -> None:
    _deployed(server, fname, "export const handler = () => new Promise(() => {});\n")
    response = server.invoke(fname)
    assert response.status_code == 500
    log = server.wait_for_log(request_id=response.headers["x-request-id"], operation="invoke")
    assert "never settled" in log["stderr"]


def test_text_encoding_base64_and_bigint(server: ServerProcess, fname: str) -> None:
    source = """
export function handler() {
  const bytes = new TextEncoder().encode("π≈3");
  return {
    length: bytes.length,
    back: new TextDecoder().decode(bytes),
    b64: btoa("wasmlet"),
    raw: atob("d2FzbWxldA=="),
    big: (2n ** 64n).toString(),
  };
}
"""
    _deployed(server, fname, source)
    assert server.invoke(fname).json() == {
        "length": 6,
        "back": "π≈3",
        "b64": "d2FzbWxldA==",
        "raw": "wasmlet",
        "big": "18446744073709551616",
    }


def test_invalid_request_json_is_the_functions_error(server: ServerProcess, fname: str) -> None:
    _deployed(server, fname, "export const handler = async (req) => await req.json();\n")
    response = server.invoke(fname, b"{not json")
    assert response.status_code == 500
    assert response.json()["error"]["type"] == "function_error"
    log = server.wait_for_log(request_id=response.headers["x-request-id"], operation="invoke")
    assert "SyntaxError" in log["stderr"]


def test_a_refused_header_is_logged_not_fatal(server: ServerProcess, fname: str) -> None:
    source = """
export const handler = () => ({
  status: 200,
  headers: { "content-length": "1", "x-ok": "1" },
  body: "fine",
});
"""
    _deployed(server, fname, source)
    response = server.invoke(fname)
    assert response.status_code == 200
    assert response.text == "fine"
    assert response.headers["x-ok"] == "1"
    assert response.headers["content-length"] == "4"
