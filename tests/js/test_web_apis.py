"""The Web-standard objects JavaScript functions get (URL, URLSearchParams, Headers,
TextEncoder/TextDecoder, base64, crypto, structuredClone, AbortController, Request,
Response), checked inside the real engine: packaged, compiled and run as a worker runs
it. One function makes every check and answers with the results, so one packaging
serves them all; each check is then its own test."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from wasmlet.errors import InvalidSource
from wasmlet.js.package import JavaScriptPackager
from wasmlet.runtime.compiler import ModuleCompiler
from wasmlet.runtime.executor import Executor
from wasmlet.runtime.outcome import Job, Outcome, OutcomeKind

MB = 1024 * 1024
_ids = itertools.count()

# check(name, got, want): each result is "ok" or {got, want}.
CHECKS = r"""
const results = {};
const check = (name, got, want) => {
  results[name] = JSON.stringify(got) === JSON.stringify(want) ? "ok" : { got, want };
};
const failure = (fn) => {
  try {
    fn();
    return "no error";
  } catch (error) {
    return error.name;
  }
};

export async function handler(req) {
  const incoming = new URL(req.url);
  check("url_of_the_request", [incoming.protocol, incoming.hostname, incoming.pathname,
    incoming.search, incoming.searchParams.get("y")],
    ["http:", "example.test", "/functions/v1/web/a/b", "?x=1&y=a+b", "a b"]);
  const rel = new URL("../c/./d?q=1#h", "https://User:pw@Example.COM:443/a/b/");
  check("url_relative_resolution", [rel.href, rel.origin, rel.host, rel.username, rel.hash],
    ["https://User:pw@example.com/a/c/d?q=1#h", "https://example.com", "example.com", "User",
     "#h"]);
  check("url_ip_addresses", [new URL("http://0x7f.1:8080/x").host,
    new URL("http://2130706433/").hostname, new URL("http://[::1]:81/").hostname],
    ["127.0.0.1:8080", "127.0.0.1", "[::1]"]);
  check("url_percent_encoding", new URL("http://a/b c/é?d e#f g").href,
    "http://a/b%20c/%C3%A9?d%20e#f%20g");
  check("url_invalid", [URL.canParse("not a url"), URL.canParse("/x", "http://h"),
    failure(() => new URL("http://")), failure(() => new URL("http://h:99999/"))],
    [false, true, "TypeError", "TypeError"]);
  check("url_other_schemes", [new URL("mailto:x@y.z").pathname,
    new URL("postgres://u@db:5432/app").port], ["x@y.z", "5432"]);
  const edited = new URL("http://h/p?z=1");
  edited.searchParams.set("k", "v w");
  edited.searchParams.sort();
  edited.pathname = "/q r";
  edited.hash = "top";
  check("url_setters_and_linked_search_params",
    [edited.href, String(edited), JSON.stringify({ u: edited })],
    ["http://h/q%20r?k=v+w&z=1#top", "http://h/q%20r?k=v+w&z=1#top",
     '{"u":"http://h/q%20r?k=v+w&z=1#top"}']);

  const params = new URLSearchParams({ a: "1 2", b: "é&=" });
  params.append("a", "3");
  check("url_search_params", [params.toString(), params.getAll("a"), params.size,
    [...new URLSearchParams("?x=%41&y=+&x")], new URLSearchParams([["k", "v"]]).get("k"),
    params.has("a", "3")],
    ["a=1+2&b=%C3%A9%26%3D&a=3", ["1 2", "3"], 3, [["x", "A"], ["y", " "], ["x", ""]], "v",
     true]);

  const headers = new Headers({ "X-A": "1" });
  headers.append("x-a", " 2 ");
  headers.append("Set-Cookie", "s=1");
  headers.append("set-cookie", "t=2");
  check("headers_case_insensitive_and_iteration", [headers.get("X-a"), headers.has("SET-COOKIE"),
    [...headers], [...headers.keys()], headers.getSetCookie(),
    failure(() => headers.set("bad name", "x")), failure(() => headers.set("x", "a\nb"))],
    ["1, 2", true, [["set-cookie", "s=1"], ["set-cookie", "t=2"], ["x-a", "1, 2"]],
     ["set-cookie", "set-cookie", "x-a"], ["s=1", "t=2"], "TypeError", "TypeError"]);

  const encoded = new TextEncoder().encode("héllo €");
  const into = new Uint8Array(4);
  const decoder = new TextDecoder();
  check("text_encoder_round_trip", [encoded.length, [...encoded.slice(0, 3)],
    new TextDecoder().decode(encoded), new TextEncoder().encodeInto("aé€", into), [...into],
    decoder.decode(encoded.subarray(0, 2), { stream: true }) + decoder.decode(encoded.subarray(2)),
    new TextDecoder().decode(new Uint8Array([0xef, 0xbb, 0xbf, 0x41])),
    failure(() => new TextDecoder("utf-8", { fatal: true }).decode(new Uint8Array([0xff])))],
    [10, [104, 195, 169], "héllo €", { read: 2, written: 3 }, [97, 195, 169, 0], "héllo €", "A",
     "TypeError"]);

  check("base64", [btoa("hi!"), atob("aGkh"), atob(" aGk= "), failure(() => atob("a")),
    failure(() => btoa("€"))], ["aGkh", "hi!", "hi", "InvalidCharacterError",
    "InvalidCharacterError"]);

  const random = crypto.getRandomValues(new Uint8Array(64));
  const words = crypto.getRandomValues(new Uint32Array(4));
  check("crypto_random", [random.some((x) => x !== 0), new Set(random).size > 8,
    words.some((x) => x > 255), failure(() => crypto.getRandomValues(new Float64Array(2))),
    /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/.test(crypto.randomUUID()),
    crypto.randomUUID() !== crypto.randomUUID()],
    [true, true, true, "TypeMismatchError", true, true]);

  const original = { a: [1, { b: 2 }], d: new Date(5), m: new Map([[1, { x: 1 }]]), s: new Set([1]),
    bytes: new Uint8Array([1, 2]), error: new RangeError("r") };
  original.self = original;
  const copy = structuredClone(original);
  copy.a[1].b = 3;
  copy.bytes[0] = 9;
  check("structured_clone_deep_copies", [original.a[1].b, original.bytes[0], copy.self === copy,
    copy.d instanceof Date && copy.d.getTime(), copy.m.get(1).x, copy.s.has(1), copy.bytes[1],
    copy.error instanceof RangeError && copy.error.message,
    failure(() => structuredClone({ f() {} })), failure(() => structuredClone(new Headers()))],
    [2, 1, true, 5, 1, true, 2, "r", "DataCloneError", "DataCloneError"]);

  const controller = new AbortController();
  let heard = 0;
  controller.signal.addEventListener("abort", () => heard++);
  controller.signal.onabort = () => heard++;
  controller.abort();
  controller.abort();
  const early = await fetch("http://127.0.0.1:9/", { signal: AbortSignal.abort() })
    .then(() => "resolved", (error) => error.name);
  const later = new AbortController();
  const pending = fetch("http://127.0.0.1:9/", { signal: later.signal });
  later.abort(); // right after fetch(): the request has not gone out yet
  const justAfter = await pending.then(() => "resolved", (error) => error.name);
  const timed = AbortSignal.timeout(5);
  await new Promise((resolve) => setTimeout(resolve, 20));
  check("abort_controller_and_signals", [controller.signal.aborted,
    controller.signal.reason.name, heard, early, justAfter, timed.aborted, timed.reason.name,
    AbortSignal.any([timed]).aborted, failure(() => timed.throwIfAborted())],
    [true, "AbortError", 2, "AbortError", "AbortError", true, "TimeoutError", true,
     "TimeoutError"]);

  // No server behind this runtime: the host answers connect_failed.
  const refused = await fetch("http://127.0.0.1:9/").then(() => null,
    (error) => [error.name, error.message.startsWith("fetch failed: connect_failed"),
      error.cause.type]);
  check("fetch_failure_is_a_type_error", [refused,
    await fetch("ftp://h/").then(() => null, (error) => error.name),
    await fetch("/relative").then(() => null, (error) => error.name)],
    [["TypeError", true, "connect_failed"], "TypeError", "TypeError"]);

  check("request_body_and_headers", [await req.clone().json(), await req.text(), req.method,
    req.headers.get("Content-Type"), req.bodyUsed, req.signal.aborted,
    new Request("http://a/x", { method: "post", body: "hi" }).headers.get("content-type"),
    failure(() => new Request("http://a/", { method: "GET", body: "x" })),
    failure(() => new Request("relative"))],
    [{ name: "x" }, '{"name": "x"}', "POST", "application/json", true, false,
     "text/plain;charset=UTF-8", "TypeError", "TypeError"]);

  const made = Response.json({ a: 1 }, { status: 201, headers: { "x-y": "z" } });
  const redirect = Response.redirect("https://x.test/a", 307);
  check("response_helpers_and_status_validation", [made.status, made.ok,
    made.headers.get("content-type"), made.headers.get("x-y"), await made.clone().json(),
    await made.text(), redirect.status, redirect.headers.get("location"),
    failure(() => Response.redirect("https://x.test/", 200)),
    failure(() => new Response("x", { status: 700 })),
    failure(() => new Response("x", { status: 204 })), Response.error().type,
    await new Response(new Uint8Array([104, 105])).text()],
    [201, true, "application/json", "z", { a: 1 }, '{"a":1}', 307, "https://x.test/a",
     "RangeError", "RangeError", "TypeError", "error", "hi"]);
  check("deno_env", [Deno.env.get("WEB_SECRET"), Deno.env.has("NOPE"), process.env.WEB_SECRET],
    ["s3", false, "s3"]);
  return results;
}
"""

NAMES = [
    "url_of_the_request", "url_relative_resolution", "url_ip_addresses", "url_percent_encoding",
    "url_invalid", "url_other_schemes", "url_setters_and_linked_search_params",
    "url_search_params", "headers_case_insensitive_and_iteration", "text_encoder_round_trip",
    "base64", "crypto_random", "structured_clone_deep_copies", "abort_controller_and_signals",
    "fetch_failure_is_a_type_error", "request_body_and_headers",
    "response_helpers_and_status_validation", "deno_env",
]  # fmt: skip


def run_js(
    source: str,
    tmp: Path,
    *,
    stdin: bytes = b"",
    env: dict[str, str] | None = None,
    triggers: list[dict[str, Any]] | None = None,
) -> Outcome:
    packaged = JavaScriptPackager().package(source, triggers=triggers)
    module = ModuleCompiler(tmp).compile(packaged.wasm)
    job = Job(
        invocation_id=f"web-{next(_ids)}",
        module_key=module.key,
        module_path=str(module.path),
        stdin=stdin,
        env={
            "WASMLET_TRIGGER": "http", "WASMLET_FUNCTION": "web", "WASMLET_HTTP_METHOD": "POST",
            "WASMLET_HTTP_PATH": "/a/b", "WASMLET_HTTP_QUERY": "x=1&y=a+b",
            "WASMLET_HTTP_HEADERS": json.dumps(
                {"host": "example.test", "content-type": "application/json"}
            ),
            **(env or {}),
        },
        argv=("web",),
        timeout_ms=10_000,
        memory_limit_bytes=128 * MB,
        stdout_limit=MB,
        stderr_limit=64 * 1024,
    )  # fmt: skip
    with Executor() as executor:
        return executor.run(job)


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    outcome = run_js(
        CHECKS,
        tmp_path_factory.mktemp("web"),
        stdin=b'{"name": "x"}',
        env={"WEB_SECRET": "s3"},
    )
    assert outcome.kind is OutcomeKind.OK, outcome.stderr.decode(errors="replace")
    answer: dict[str, Any] = json.loads(outcome.stdout)
    yield answer


def test_every_check_reported(results: dict[str, Any]) -> None:
    assert sorted(results) == sorted(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_web_api(results: dict[str, Any], name: str) -> None:
    assert results.get(name) == "ok", results.get(name)


@pytest.mark.parametrize(
    "source",
    [
        "Deno.serve(async (req) => new Response(`served ${(await req.json()).n}`));",
        "Deno.serve({ port: 8000 }, (req) => req.json().then((b) => `served ${b.n}`));",
        "Deno.serve({ handler: async (req) => `served ${(await req.json()).n}` });",
        "Deno.serve({ onError: (e) => new Response(`served ${e.message}`) },"
        " () => { throw new Error('1'); });",
        "export default { fetch: async (req, env, ctx) => `served ${(await req.json()).n}` };",
    ],
    ids=["handler", "options-handler", "options-object", "on-error", "workers-default"],
)
def test_request_style_handler_shapes(source: str, tmp_path: Path) -> None:
    outcome = run_js(source, tmp_path, stdin=b'{"n": 1}')
    assert outcome.kind is OutcomeKind.OK, outcome.stderr.decode(errors="replace")
    assert outcome.stdout == b"served 1"


def test_a_fetch_style_handler_gets_a_queued_invocation_as_a_request(tmp_path: Path) -> None:
    source = """
Deno.serve(async (req) => ({ method: req.method, url: new URL(req.url).pathname,
  type: req.headers.get("content-type"), body: await req.json() }));
"""
    outcome = run_js(
        source, tmp_path, stdin=b'{"name": "Ada"}', env={"WASMLET_TRIGGER": "http_async"}
    )
    assert outcome.kind is OutcomeKind.OK, outcome.stderr.decode(errors="replace")
    assert json.loads(outcome.stdout) == {
        "method": "POST", "url": "/functions/v1/web/a/b", "type": "application/json",
        "body": {"name": "Ada"},
    }  # fmt: skip


def test_a_fetch_style_handler_gets_a_database_event_as_a_json_post(tmp_path: Path) -> None:
    # What a Supabase database webhook sends to an Edge Function.
    source = """
Deno.serve(async (req) => {
  const event = await req.json();
  return `${req.method} ${req.headers.get("content-type")} ${event.type} ${event.record.id}`;
});
"""
    event = {"type": "INSERT", "table": "users", "schema": "public", "record": {"id": 7}}
    outcome = run_js(
        source,
        tmp_path,
        stdin=json.dumps(event).encode(),
        env={"WASMLET_TRIGGER": "database"},
        triggers=[{"type": "database", "table": "users", "events": ["INSERT"]}],
    )
    assert outcome.kind is OutcomeKind.OK, outcome.stderr.decode(errors="replace")
    assert outcome.stdout == b"POST application/json INSERT 7"


def test_deno_serve_twice_or_inside_a_handler_is_refused(tmp_path: Path) -> None:
    twice = "Deno.serve(() => 'a');\nDeno.serve(() => 'b');\n"
    with pytest.raises(InvalidSource, match=r"Deno\.serve: a function serves one handler"):
        JavaScriptPackager().package(twice)
    late = "export function handler() { Deno.serve(() => 'x'); }\n"
    outcome = run_js(late, tmp_path)
    assert outcome.kind is OutcomeKind.EXIT_ERROR
    assert b"call it at the module's top level" in outcome.stderr


def test_fetch_at_the_top_level_is_refused_at_deploy(tmp_path: Path) -> None:
    # The top level runs once, at deploy, where no request may go out; what it saw is
    # in the snapshot every invocation starts from.
    source = """
let seen = "not settled";
fetch("http://127.0.0.1:9/").then(() => { seen = "sent"; }, (error) => { seen = error.message; });
export default () => seen;
"""
    outcome = run_js(source, tmp_path)
    assert outcome.kind is OutcomeKind.OK, outcome.stderr.decode(errors="replace")
    assert outcome.stdout == (
        b"fetch failed: unavailable: fetch cannot run at deploy, while the module's top level runs"
    )


def test_console_shows_web_api_objects_by_their_contents(tmp_path: Path) -> None:
    source = """
export function handler(req) {
  console.log(new Headers({ "X-A": "1" }), new URL("http://h/p?q=1"),
    new URLSearchParams("a=1"), new Response("x", { status: 201 }));
}
"""
    outcome = run_js(source, tmp_path)
    assert outcome.kind is OutcomeKind.OK, outcome.stderr.decode(errors="replace")
    lines = [line for _, line in outcome.logs]
    assert lines == [
        '{"Headers":[["x-a","1"]]} "http://h/p?q=1" {"URLSearchParams":"a=1"} '
        '{"Response":{"status":201,"url":""}}'
    ]
