"""The invoke door (api/invoke_door.py): invocations skip FastAPI's middleware stack but
keep what it did for them (request id, error body with hint, the bare 500).

Unit tests of one module: the route handler (`invoke_function`) is replaced, so no
services are started, and requests go straight into the ASGI app. The real invoke path
over HTTP is tests/api/test_invoke.py, test_error_bodies.py, test_error_hint.py and
test_supabase.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from wasmlet.api import invoke_door
from wasmlet.api.errors import install_error_handlers
from wasmlet.api.invoke_door import WasmletApp, check_door_leaves, invocation_target
from wasmlet.api.request_id import RequestIdMiddleware
from wasmlet.api.routes import (
    alerts,
    deploy,
    functions,
    jobs,
    nodes,
    observability,
    schedules,
    secrets,
    system,
    versions,
)
from wasmlet.errors import FunctionNotFound, TooManyRequests

MANAGEMENT = (
    system, deploy, functions, versions, alerts, jobs, observability, schedules, nodes, secrets
)  # fmt: skip


@pytest.mark.parametrize(
    ("method", "path", "target"),
    [
        ("POST", "/functions/v1/invoke/hello", ("hello", "/")),
        ("GET", "/functions/v1/invoke/hello", None),  # the spec's route is POST only
        ("POST", "/functions/v1/invoke/hello/more", None),
        ("POST", "/functions/v1/invoke/", None),
        ("POST", "/functions/v1/hello", ("hello", "/")),
        ("GET", "/functions/v1/hello/", ("hello", "/")),
        ("DELETE", "/functions/v1/hello/a/b", ("hello", "/a/b")),
        ("TRACE", "/functions/v1/hello", None),
        ("POST", "/functions/v1//x", None),
        ("GET", "/functions/v1/functions", None),  # reserved: FastAPI's
        ("POST", "/functions/v1/deploy", None),
        ("GET", "/functions/v1/functions/hello/logs", None),
        ("GET", "/health", None),
        ("POST", "/functions/v2/hello", None),
    ],
)
def test_the_door_takes_invocations_only(
    method: str, path: str, target: tuple[str, str] | None
) -> None:
    assert invocation_target(method, path) == target


def test_no_management_path_reaches_the_door() -> None:
    check_door_leaves(r for m in MANAGEMENT for r in m.router.routes)
    with pytest.raises(RuntimeError, match="reserved name"):
        check_door_leaves([Route("/functions/v1/hello/stats", lambda r: Response())])


class _Refuse:
    """A middleware that fails every request it sees: the door's must not reach it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            raise AssertionError("went through the middleware stack")
        await self.app(scope, receive, send)


@pytest.fixture
def client(monkeypatch: pytest.MonkeyPatch) -> Iterator[_Client]:
    async def fake_invoke(request: Request, name: str, path: str) -> Response:
        body = await request.body()
        if name == "missing":
            raise FunctionNotFound(f"Function not found: {name}", function=name)
        if name == "busy":
            raise TooManyRequests("Too many concurrent invocations", function=name, retry_after=3)
        if name == "broken":
            raise RuntimeError("a bug")
        headers = {"x-request-id": "from-the-function", "x-path": path}
        return Response(body, status_code=201, headers=headers)

    monkeypatch.setattr(invoke_door, "invoke_function", fake_invoke)
    app = WasmletApp()
    install_error_handlers(app)
    app.add_middleware(RequestIdMiddleware)
    app.add_middleware(_Refuse)
    yield _Client(app)


class _Client:
    """Requests straight into the ASGI app (httpx's ASGI transport), one at a time."""

    def __init__(self, app: ASGIApp) -> None:
        self._transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        async def send() -> httpx.Response:
            async with httpx.AsyncClient(
                transport=self._transport, base_url="http://test"
            ) as client:
                return await client.request(method, path, **kwargs)

        return asyncio.run(send())

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", path, **kwargs)

    def put(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("PUT", path, **kwargs)


def test_an_invocation_skips_the_middleware_stack(client: _Client) -> None:
    answer = client.post("/functions/v1/invoke/hello", content=b"stdin")
    assert (answer.status_code, answer.content) == (201, b"stdin")
    assert client.get("/functions/v1/functions").status_code == 500  # the stack's


def test_the_request_id_is_the_callers_and_the_last_header(client: _Client) -> None:
    answer = client.put("/functions/v1/hello/a/b", headers={"X-Request-Id": "req-1"})
    assert answer.headers.get_list("x-request-id") == ["req-1"]
    assert answer.headers.raw[-1] == (b"x-request-id", b"req-1")
    assert answer.headers["x-path"] == "/a/b"
    made = client.post("/functions/v1/hello", headers={"X-Request-Id": "bad id!"})
    (made_id,) = made.headers.get_list("x-request-id")
    assert made_id not in ("bad id!", "from-the-function") and len(made_id) == 36


def test_a_refusal_is_the_error_body_with_its_hint(client: _Client) -> None:
    answer = client.post("/functions/v1/invoke/missing", headers={"X-Request-Id": "r2"})
    assert answer.status_code == 404
    assert answer.headers.get_list("x-request-id") == ["r2"]
    assert answer.json() == {
        "error": {
            "type": "function_not_found",
            "retriable": False,
            "message": "Function not found: missing",
            "function": "missing",
            "request_id": "r2",
            "hint": "wasmlet logs missing --request-id r2",
        }
    }
    busy = client.post("/functions/v1/busy")
    assert (busy.status_code, busy.headers["retry-after"]) == (429, "3")
    assert busy.json()["error"]["retriable"] is True


def test_an_unexpected_error_is_the_bare_500(client: _Client) -> None:
    answer = client.post("/functions/v1/broken", headers={"X-Request-Id": "r3"})
    assert answer.status_code == 500
    assert answer.headers.get_list("x-request-id") == ["r3"]
    assert answer.json()["error"] == {
        "type": "internal_error",
        "retriable": False,
        "message": answer.json()["error"]["message"],
        "function": None,
        "request_id": "r3",
    }
