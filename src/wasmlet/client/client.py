"""WasmletClient (sync) and AsyncWasmletClient: the same calls, one request builder."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

import httpx

from wasmlet.client.retry import RetryPolicy
from wasmlet.client.transport import connection_failure, error_from_response, raise_for_error
from wasmlet.errors import ConnectionFailed, FunctionError

DEFAULT_URL = "http://127.0.0.1:8787"


@dataclass(frozen=True, slots=True)
class InvokeResponse:
    status: int
    headers: dict[str, str]
    body: bytes
    request_id: str | None
    attempts: int

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass(frozen=True, slots=True)
class _Call:
    method: str
    path: str
    content: bytes | None = None
    headers: dict[str, str] | None = None


def _deploy_call(name: str, wasm: bytes, config: dict[str, Any] | None, triggers: Any) -> _Call:
    body: dict[str, Any] = {"name": name, "wasm": base64.b64encode(wasm).decode()}
    if config is not None:
        body["config"] = config
    if triggers is not None:
        body["triggers"] = triggers
    return _Call("POST", "/functions/v1/deploy", json.dumps(body).encode(), _JSON)


def _deploy_js_call(
    name: str,
    source: str,
    config: dict[str, Any] | None,
    triggers: Any,
    filename: str | None,
) -> _Call:
    body: dict[str, Any] = {"name": name, "runtime": "javascript", "source": source}
    if filename is not None:
        body["filename"] = filename
    if config is not None:
        body["config"] = config
    if triggers is not None:
        body["triggers"] = triggers
    return _Call("POST", "/functions/v1/deploy", json.dumps(body).encode(), _JSON)


def _invoke_call(
    name: str,
    payload: bytes | str | Any,
    headers: dict[str, str] | None,
    method: str = "POST",
    path: str = "",
) -> _Call:
    """POST with no path goes to `/functions/v1/invoke/NAME`; another method or a path to
    the Supabase-style `/functions/v1/NAME/PATH` (the guest sees both)."""
    sent = dict(headers or {})
    if isinstance(payload, bytes):
        content = payload
    elif isinstance(payload, str):
        content = payload.encode()
        sent.setdefault("content-type", "text/plain")
    elif payload is None:
        content = b""
    else:
        content = json.dumps(payload).encode()
        sent.setdefault("content-type", "application/json")
    if method == "POST" and not path:
        return _Call("POST", f"/functions/v1/invoke/{name}", content, sent)
    if path and not path.startswith("/"):
        path = "/" + path
    return _Call(method, f"/functions/v1/{name}{path}", content, sent)


_JSON = {"content-type": "application/json"}


def _query(**params: object) -> str:
    given = {k: str(v) for k, v in params.items() if v is not None}
    return "?" + urlencode(given) if given else ""


def _auth(key: str | None) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"} if key else {}


def _to_invoke_response(response: httpx.Response, attempts: int) -> InvokeResponse:
    return InvokeResponse(
        status=response.status_code,
        headers=dict(response.headers),
        body=response.content,
        request_id=response.headers.get("x-request-id"),
        attempts=attempts,
    )


class WasmletClient:
    def __init__(
        self,
        base_url: str = DEFAULT_URL,
        key: str | None = None,
        *,
        timeout_s: float = 60.0,
        retry: RetryPolicy | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._http = httpx.Client(
            base_url=base_url, headers=_auth(key), timeout=timeout_s, transport=transport
        )
        self.retry = retry or RetryPolicy()
        self._sleep = time.sleep

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> WasmletClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def url(self) -> str:
        """The server's base URL."""
        return str(self._http.base_url).rstrip("/")

    def _send(self, call: _Call) -> httpx.Response:
        try:
            return self._http.request(
                call.method, call.path, content=call.content, headers=call.headers
            )
        except httpx.TransportError as exc:
            raise connection_failure(exc) from exc

    def _json(self, call: _Call) -> Any:
        response = self._send(call)
        raise_for_error(response)
        return response.json() if response.content else None

    def invoke(
        self,
        name: str,
        payload: bytes | str | Any = None,
        *,
        headers: dict[str, str] | None = None,
        method: str = "POST",
        path: str = "",
        return_errors: bool = False,
    ) -> InvokeResponse:
        """Invoke with the retry strategy; raises the typed error of the last attempt
        (with `return_errors`, an error answer of the last attempt is returned instead)."""
        call = _invoke_call(name, payload, headers, method, path)
        attempt = 0
        while True:
            error: FunctionError
            answer: httpx.Response | None = None
            try:
                answer = response = self._send(call)
            except ConnectionFailed as exc:
                error = exc
            else:
                if response.status_code < 400:
                    return _to_invoke_response(response, attempt + 1)
                error = error_from_response(response)
            decision = self.retry.decide(attempt, error)
            if not decision.retry:
                if return_errors and answer is not None:
                    return _to_invoke_response(answer, attempt + 1)
                raise error
            self._sleep(decision.delay_s)
            attempt += 1

    def deploy(
        self,
        name: str,
        wasm: bytes,
        config: dict[str, Any] | None = None,
        triggers: list[dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        result: dict[str, Any] = self._json(_deploy_call(name, wasm, config, triggers))
        return result

    def deploy_javascript(
        self,
        name: str,
        source: str,
        config: dict[str, Any] | None = None,
        triggers: list[dict[str, Any]] | None = None,
        *,
        filename: str | None = None,
    ) -> dict[str, Any]:
        """Deploy JavaScript `source` (an ES module exporting `handler`)."""
        call = _deploy_js_call(name, source, config, triggers, filename)
        result: dict[str, Any] = self._json(call)
        return result

    def list(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._json(_Call("GET", "/functions/v1/functions"))[
            "functions"
        ]
        return result

    def get(self, name: str) -> dict[str, Any]:
        result: dict[str, Any] = self._json(_Call("GET", f"/functions/v1/functions/{name}"))
        return result

    def update(self, name: str, **changes: Any) -> dict[str, Any]:
        call = _Call(
            "PATCH", f"/functions/v1/functions/{name}", json.dumps(changes).encode(), _JSON
        )
        result: dict[str, Any] = self._json(call)
        return result

    def delete(self, name: str) -> None:
        self._json(_Call("DELETE", f"/functions/v1/functions/{name}"))

    def versions(self, name: str, limit: int = 20, before: int | None = None) -> dict[str, Any]:
        """A function's kept versions, newest first (`next_before` pages on)."""
        path = f"/functions/v1/functions/{name}/versions{_query(limit=limit, before=before)}"
        result: dict[str, Any] = self._json(_Call("GET", path))
        return result

    def rollback(self, name: str, version: int | None = None) -> dict[str, Any]:
        """Make `version` (default: the one before the live one) live as a new version."""
        body = json.dumps({} if version is None else {"version": version}).encode()
        call = _Call("POST", f"/functions/v1/functions/{name}/rollback", body, _JSON)
        result: dict[str, Any] = self._json(call)
        return result

    def health(self) -> dict[str, Any]:
        response = self._send(_Call("GET", "/health"))
        result: dict[str, Any] = response.json()
        return result

    def logs(self, name: str, **filters: str | int | float | None) -> dict[str, Any]:
        """A function's log lines: since, until, level, request_id, after, limit."""
        path = f"/functions/v1/functions/{name}/logs{_query(**filters)}"
        result: dict[str, Any] = self._json(_Call("GET", path))
        return result

    def invocations(self, name: str, **filters: str | int | None) -> dict[str, Any]:
        """A function's invocations, newest first: status, error_type, request_id,
        before, limit."""
        path = f"/functions/v1/functions/{name}/invocations{_query(**filters)}"
        result: dict[str, Any] = self._json(_Call("GET", path))
        return result

    def stats(self, minutes: float = 5.0) -> dict[str, Any]:
        """Per function figures over the last `minutes` (what `wasmlet top` shows)."""
        result: dict[str, Any] = self._json(
            _Call("GET", f"/functions/v1/stats{_query(minutes=minutes)}")
        )
        return result

    def invoke_async(self, name: str, payload: bytes | str | Any = None) -> str:
        """Queue an invocation (retried by the function's policy); its invocation id."""
        call = _invoke_call(name, payload, {"prefer": "respond-async"})
        invocation_id: str = self._json(call)["invocation_id"]
        return invocation_id

    def invocation(self, invocation_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self._json(
            _Call("GET", f"/functions/v1/invocations/{invocation_id}")
        )
        return result

    def alerts(self) -> dict[str, Any]:
        """`{"alerts": [...]}`: the alerts firing now, most severe first."""
        result: dict[str, Any] = self._json(_Call("GET", "/functions/v1/alerts"))
        return result

    def schedules(self) -> dict[str, Any]:
        result: dict[str, Any] = self._json(_Call("GET", "/functions/v1/schedules"))
        return result

    def set_secrets(self, secrets: dict[str, str]) -> dict[str, Any]:
        """Set (or replace) project-wide secrets; `{"secrets": [...]}` after (names,
        digests, updated times)."""
        body = json.dumps([{"name": k, "value": v} for k, v in secrets.items()]).encode()
        result: dict[str, Any] = self._json(_Call("PUT", "/functions/v1/secrets", body, _JSON))
        return result

    def secrets(self) -> dict[str, Any]:
        """`{"secrets": [...]}`: every secret's name, digest and updated time; no values."""
        result: dict[str, Any] = self._json(_Call("GET", "/functions/v1/secrets"))
        return result

    def unset_secret(self, name: str) -> None:
        self._json(_Call("DELETE", f"/functions/v1/secrets/{quote(name, safe='')}"))

    def nodes(self) -> dict[str, Any]:
        """The nodes serving from the server's database (service key)."""
        result: dict[str, Any] = self._json(_Call("GET", "/functions/v1/nodes"))
        return result

    def schedule_action(self, function: str, schedule_id: str, action: str) -> dict[str, Any]:
        """`action` is pause, resume or run (run it now)."""
        path = f"/functions/v1/schedules/{function}/{schedule_id}/{action}"
        result: dict[str, Any] = self._json(_Call("POST", path))
        return result

    def dead_letters(
        self, function: str | None = None, error_type: str | None = None, limit: int = 100
    ) -> dict[str, Any]:
        query = _query(function=function, error_type=error_type, limit=limit)
        result: dict[str, Any] = self._json(_Call("GET", f"/functions/v1/dlq{query}"))
        return result

    def dead_letter(self, entry_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self._json(_Call("GET", f"/functions/v1/dlq/{entry_id}"))
        return result

    def retry_dead_letters(
        self,
        entry_id: str | None = None,
        function: str | None = None,
        error_type: str | None = None,
    ) -> int:
        path = (
            f"/functions/v1/dlq/{entry_id}/retry"
            if entry_id
            else f"/functions/v1/dlq/retry{_query(function=function, error_type=error_type)}"
        )
        requeued: int = self._json(_Call("POST", path))["requeued"]
        return requeued

    def purge_dead_letters(
        self,
        entry_id: str | None = None,
        function: str | None = None,
        error_type: str | None = None,
    ) -> int:
        if entry_id:
            self._json(_Call("DELETE", f"/functions/v1/dlq/{entry_id}"))
            return 1
        query = _query(function=function, error_type=error_type)
        purged: int = self._json(_Call("DELETE", f"/functions/v1/dlq{query}"))["purged"]
        return purged


class AsyncWasmletClient:
    def __init__(
        self,
        base_url: str = DEFAULT_URL,
        key: str | None = None,
        *,
        timeout_s: float = 60.0,
        retry: RetryPolicy | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._http = httpx.AsyncClient(
            base_url=base_url, headers=_auth(key), timeout=timeout_s, transport=transport
        )
        self.retry = retry or RetryPolicy()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncWasmletClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def _send(self, call: _Call) -> httpx.Response:
        try:
            return await self._http.request(
                call.method, call.path, content=call.content, headers=call.headers
            )
        except httpx.TransportError as exc:
            raise connection_failure(exc) from exc

    async def _json(self, call: _Call) -> Any:
        response = await self._send(call)
        raise_for_error(response)
        return response.json() if response.content else None

    async def invoke(
        self,
        name: str,
        payload: bytes | str | Any = None,
        *,
        headers: dict[str, str] | None = None,
        method: str = "POST",
        path: str = "",
    ) -> InvokeResponse:
        call = _invoke_call(name, payload, headers, method, path)
        attempt = 0
        while True:
            error: FunctionError
            try:
                response = await self._send(call)
            except ConnectionFailed as exc:
                error = exc
            else:
                if response.status_code < 400:
                    return _to_invoke_response(response, attempt + 1)
                error = error_from_response(response)
            decision = self.retry.decide(attempt, error)
            if not decision.retry:
                raise error
            await asyncio.sleep(decision.delay_s)
            attempt += 1

    async def deploy(
        self,
        name: str,
        wasm: bytes,
        config: dict[str, Any] | None = None,
        triggers: list[dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        result: dict[str, Any] = await self._json(_deploy_call(name, wasm, config, triggers))
        return result

    async def deploy_javascript(
        self,
        name: str,
        source: str,
        config: dict[str, Any] | None = None,
        triggers: list[dict[str, Any]] | None = None,
        *,
        filename: str | None = None,
    ) -> dict[str, Any]:
        """Deploy JavaScript `source` (an ES module exporting `handler`)."""
        call = _deploy_js_call(name, source, config, triggers, filename)
        result: dict[str, Any] = await self._json(call)
        return result

    async def get(self, name: str) -> dict[str, Any]:
        result: dict[str, Any] = await self._json(_Call("GET", f"/functions/v1/functions/{name}"))
        return result

    async def delete(self, name: str) -> None:
        await self._json(_Call("DELETE", f"/functions/v1/functions/{name}"))
