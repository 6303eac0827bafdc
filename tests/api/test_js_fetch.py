"""JavaScript `fetch` end to end: JS functions in a real `wasmlet serve` calling a real
HTTP server on 127.0.0.1 (the outside world) through `allowed_hosts`, and the request
handler shapes Supabase and Workers code uses (Deno.serve, export default {fetch}),
synchronously and queued."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.support.appdb import wait_until
from tests.support.js import deploy_js, example
from tests.support.server import ServerProcess, free_port
from tests.support.upstream import HELLO, Upstream, running_upstream

# Fetches what the request asks for and answers with what it saw: the upstream's
# status, headers and body, or the error's name and message. With "rethrow", a failed
# fetch is left uncaught (the function fails).
PROXY = """
export async function handler(req) {
  const ask = await req.json();
  const init = { method: ask.method || "GET", headers: ask.headers || {} };
  if (ask.body !== undefined) init.body = JSON.stringify(ask.body);
  if (ask.abort_ms) init.signal = AbortSignal.timeout(ask.abort_ms);
  const started = Date.now();
  try {
    const res = await fetch(ask.url, init);
    return { status: res.status, type: res.headers.get("content-type"), url: res.url,
             upstream: res.headers.get("x-upstream"), body: await res.text() };
  } catch (error) {
    if (ask.rethrow) throw error;
    return { error: error.name, message: error.message, ms: Date.now() - started };
  }
}
"""


@pytest.fixture(scope="module")
def upstream() -> Iterator[Upstream]:
    with running_upstream() as server:
        yield server


def deploy(server: ServerProcess, name: str, source: str, **config: Any) -> None:
    response = deploy_js(server, name, source, config)
    assert response.status_code == 201, response.text


def ask(server: ServerProcess, name: str, **request: Any) -> dict[str, Any]:
    response = server.invoke(name, json.dumps(request).encode())
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def invoke_async(server: ServerProcess, name: str, payload: bytes) -> str:
    response = httpx.post(
        f"{server.url}/functions/v1/invoke/{name}",
        content=payload,
        headers={**server.anon_headers(), "prefer": "respond-async"},
    )
    assert response.status_code == 202, response.text
    invocation_id: str = response.json()["invocation_id"]
    return invocation_id


def finished(server: ServerProcess, invocation_id: str) -> dict[str, Any]:
    def state() -> dict[str, Any]:
        response = httpx.get(
            f"{server.url}/functions/v1/invocations/{invocation_id}",
            headers=server.anon_headers(),
        )
        assert response.status_code == 200, response.text
        view: dict[str, Any] = response.json()
        return view

    wait_until(lambda: state()["status"] in ("done", "dead"), 60, f"invocation {invocation_id}")
    return state()


def dlq_entries(server: ServerProcess, name: str) -> list[dict[str, Any]]:
    response = httpx.get(
        server.url + "/functions/v1/dlq", params={"function": name},
        headers=server.service_headers(),
    )  # fmt: skip
    entries: list[dict[str, Any]] = response.json()["entries"]
    return entries


def test_fetch_through_an_allow_list_entry_and_forbidden_without_it(
    server: ServerProcess, upstream: Upstream, fname: str
) -> None:
    entry = f"http://127.0.0.1:{upstream.port}"
    deploy(server, fname, PROXY, allowed_hosts=[entry])
    got = ask(server, fname, url=upstream.url("/hello"))
    assert got["status"] == 200 and got["body"] == HELLO.decode() and got["upstream"] == "yes"
    sent = ask(
        server, fname, url=upstream.url("/echo?q=1"), method="POST",
        headers={"x-api": "v1", "content-type": "application/json"}, body={"order": 7},
    )  # fmt: skip
    assert sent["status"] == 201
    seen = json.loads(sent["body"])
    assert seen["method"] == "POST" and json.loads(seen["body"]) == {"order": 7}
    assert seen["headers"]["x-api"] == "v1"
    assert seen["headers"]["content-type"] == "application/json"
    assert seen["headers"]["user-agent"] == "wasmlet-fetch" and seen["headers"]["accept"] == "*/*"
    assert server.metric("functions_http_requests_total", name=fname, host=entry, outcome="ok") == 2

    other = f"{fname[:50]}-none"
    deploy(server, other, PROXY)  # no allowed_hosts: nothing is reachable
    refused = ask(server, other, url=upstream.url("/hello"))
    assert refused["error"] == "TypeError"
    assert refused["message"].startswith("fetch failed: forbidden_host: ")
    assert len(upstream.requests) == 2  # the refused call never reached the upstream


def test_private_addresses_are_refused_unless_named(
    server: ServerProcess, upstream: Upstream, fname: str
) -> None:
    deploy(server, fname, PROXY, allowed_hosts=["http://*", "http://*:*"])
    for url in (
        "http://10.0.0.1/",
        "http://169.254.169.254/latest/meta-data/",
        upstream.url("/hello", host="localhost"),
    ):
        got = ask(server, fname, url=url)
        assert got["error"] == "TypeError", (url, got)
        assert "forbidden_host" in got["message"], (url, got)
    named = f"{fname[:50]}-named"
    deploy(server, named, PROXY, allowed_hosts=["http://*:*", f"http://localhost:{upstream.port}"])
    reached = ask(server, named, url=upstream.url("/hello", host="localhost"))
    assert reached["status"] == 200 and reached["body"] == HELLO.decode()
    assert "forbidden_host" in ask(server, named, url="http://10.0.0.1/")["message"]


def test_a_slow_upstream_is_cut_at_the_deadline_and_an_abort_signal_cuts_it_sooner(
    server: ServerProcess, upstream: Upstream, fname: str
) -> None:
    entry = f"http://127.0.0.1:{upstream.port}"
    deploy(server, fname, PROXY, allowed_hosts=[entry], timeout_ms=1500)
    cut = server.invoke(fname, json.dumps({"url": upstream.url("/slow")}).encode())
    assert cut.status_code == 504 and cut.json()["error"]["type"] == "timeout"

    started = time.monotonic()
    aborted = ask(server, fname, url=upstream.url("/slow"), abort_ms=200)
    assert aborted["error"] == "TimeoutError", aborted
    assert 150 <= aborted["ms"] < 1500
    assert time.monotonic() - started < 30  # answered, not cut at the deadline
    timeouts = server.metric(
        "functions_http_requests_total", name=fname, host=entry, outcome="timeout"
    )
    assert timeouts == 2


def test_an_upstream_that_is_down_is_retried_then_dead_lettered(
    server: ServerProcess, fname: str
) -> None:
    port = free_port()  # nothing listens there
    entry = f"http://127.0.0.1:{port}"
    retry = {"max_retries": 2, "backoff_ms": 50, "jitter": 0.0}
    deploy(
        server, fname, PROXY, allowed_hosts=[entry], retry=retry,
        circuit_breaker={"enabled": False},
    )  # fmt: skip
    payload = json.dumps({"url": f"{entry}/send", "rethrow": True}).encode()
    failed = server.invoke(fname, payload)
    assert failed.status_code == 500, failed.text
    error = failed.json()["error"]
    assert error["type"] == "host_function_error" and error["retriable"] is True
    assert "http_request failed (connect_failed)" in error["message"]

    invocation_id = invoke_async(server, fname, payload)
    wait_until(lambda: len(dlq_entries(server, fname)) == 1, 60, "the dead letter")
    (dead,) = dlq_entries(server, fname)
    assert dead["id"] == invocation_id
    assert dead["attempts"] == 3 and dead["reason"] == "max_retries_exceeded"
    assert dead["error"]["type"] == "host_function_error"
    failures = server.metric(
        "functions_http_requests_total", name=fname, host=entry, outcome="connect_failed"
    )
    assert failures == 4  # the synchronous call, then three attempts


README_GREET = """
export async function handler(req) {
  const { name } = await req.json();
  console.log("greeting", name);                  // goes to the function's log
  return { greeting: `Hello, ${name}!` };          // sent as JSON, 200
}
"""


def test_the_supabase_starter_answers_and_gets_the_body_when_queued(
    server: ServerProcess, fname: str
) -> None:
    deploy(server, fname, example("deno_serve"))
    response = server.invoke(fname, b'{"name": "Functions"}')
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"message": "Hello Functions!"}

    done = finished(server, invoke_async(server, fname, b'{"name": "Queue"}'))
    assert done["status"] == "done", done
    assert done["result"]["status"] == 200
    assert json.loads(done["result"]["body"]["text"]) == {"message": "Hello Queue!"}


def test_the_readme_greet_function_succeeds_when_invoked_async(
    server: ServerProcess, fname: str
) -> None:
    deploy(server, fname, README_GREET)
    done = finished(server, invoke_async(server, fname, b'{"name": "Ada"}'))
    assert done["status"] == "done", done
    assert json.loads(done["result"]["body"]["text"]) == {"greeting": "Hello, Ada!"}
    assert dlq_entries(server, fname) == []


def test_a_workers_default_export_answers_with_its_request(
    server: ServerProcess, fname: str
) -> None:
    source = """
export default {
  async fetch(request, env, ctx) {
    const url = new URL(request.url);
    ctx.waitUntil(Promise.resolve());
    return Response.json({ path: url.pathname, q: url.searchParams.get("q"),
      method: request.method, text: await request.text(), mode: env.MODE });
  },
};
"""
    deploy(server, fname, source, env={"MODE": "workers"})
    response = httpx.put(
        f"{server.url}/functions/v1/{fname}/items/7?q=a%20b",
        content=b"payload",
        headers=server.anon_headers(),
    )
    assert response.status_code == 200, response.text
    assert response.json() == {
        "path": f"/functions/v1/{fname}/items/7", "q": "a b", "method": "PUT",
        "text": "payload", "mode": "workers",
    }  # fmt: skip


def test_the_fetch_example_reports_the_upstream(
    server: ServerProcess, upstream: Upstream, fname: str
) -> None:
    entry = f"http://127.0.0.1:{upstream.port}"
    env = {"STATUS_URL": upstream.url("/hello")}
    deploy(server, fname, example("fetch_status"), allowed_hosts=[entry], env=env)
    response = server.invoke(fname)
    assert response.status_code == 200, response.text
    assert response.json() == {"upstream": 200, "body": HELLO.decode()}
