"""Asynchronous invocations get their own ids; a caller's X-Request-Id is only kept for
correlation, so reusing it can neither drop a call nor show one caller another's result.
Through the real server, on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.support.appdb import Backend, backend, wait_until
from tests.support.build import wat
from tests.support.server import ServerProcess

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(scope="module", params=BACKENDS)
def db(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Backend]:
    with backend(request.param, tmp_path_factory.mktemp("async-ids")) as b:
        yield b


def _enqueue(server: ServerProcess, name: str, payload: bytes, request_id: str) -> dict[str, Any]:
    response = httpx.post(
        f"{server.url}/functions/v1/invoke/{name}",
        content=payload,
        headers={**server.anon_headers(), "prefer": "respond-async", "x-request-id": request_id},
    )
    assert response.status_code == 202, response.text
    assert response.headers["x-request-id"] == request_id
    body: dict[str, Any] = response.json()
    assert response.headers["location"] == f"/functions/v1/invocations/{body['invocation_id']}"
    return body


def _finished(server: ServerProcess, invocation_id: str) -> dict[str, Any]:
    def state() -> dict[str, Any]:
        response = httpx.get(
            f"{server.url}/functions/v1/invocations/{invocation_id}",
            headers=server.anon_headers(),
        )
        assert response.status_code == 200, response.text
        view: dict[str, Any] = response.json()
        return view

    wait_until(lambda: state()["status"] == "done", 30, f"invocation {invocation_id}")
    return state()


def test_same_request_id_to_two_functions_runs_both_and_keeps_results_apart(
    db: Backend, fname: str
) -> None:
    first, second = fname + "-a", fname + "-b"
    assert db.server.deploy(first, wat("echo")).status_code == 201
    assert db.server.deploy(second, wat("hello")).status_code == 201
    shared = f"caller-{uuid.uuid4()}"

    one = _enqueue(db.server, first, b"for the first", shared)
    two = _enqueue(db.server, second, b"for the second", shared)

    assert one["invocation_id"] != two["invocation_id"]
    assert one["request_id"] == two["request_id"] == shared
    done_one = _finished(db.server, one["invocation_id"])
    done_two = _finished(db.server, two["invocation_id"])
    assert done_one["function"] == first and done_two["function"] == second
    assert done_one["result"]["body"]["text"] == "for the first"
    assert done_two["result"]["body"]["text"] == "Hello, wasmlet!"
    assert done_one["request_id"] == done_two["request_id"] == shared


def test_same_request_id_twice_to_one_function_runs_twice(db: Backend, fname: str) -> None:
    assert db.server.deploy(fname, wat("echo")).status_code == 201
    shared = f"retry-{uuid.uuid4()}"
    ids = [_enqueue(db.server, fname, body, shared)["invocation_id"] for body in (b"1", b"2")]
    assert len(set(ids)) == 2
    results = [_finished(db.server, i)["result"]["body"]["text"] for i in ids]
    assert results == ["1", "2"]


def test_invocation_shows_the_generated_request_id_when_the_caller_sent_none(
    db: Backend, fname: str
) -> None:
    assert db.server.deploy(fname, wat("echo")).status_code == 201
    response = httpx.post(
        f"{db.server.url}/functions/v1/invoke/{fname}?async=true",
        content=b"x",
        headers=db.server.anon_headers(),
    )
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["request_id"] == response.headers["x-request-id"]
    assert _finished(db.server, body["invocation_id"])["request_id"] == body["request_id"]
