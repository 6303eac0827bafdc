"""Retries, the dead letter queue, circuit breakers and async overflow, through the real
server on SQLite and PostgreSQL."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.appdb import Backend, backend, wait_until
from tests.support.build import build_c
from tests.support.server import ServerProcess

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
FLAKY = Path(__file__).parent.parent / "fixtures" / "c" / "flaky.c"
_tables = itertools.count()


@pytest.fixture(scope="module", params=BACKENDS)
def db(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Backend]:
    env = {"WASMLET_JOB_LEASE_S": "3", "WASMLET_DISPATCH_CONCURRENCY": "8"}
    with backend(request.param, tmp_path_factory.mktemp("reliability"), **env) as b:
        yield b


def attempts_table(db: Backend) -> tuple[str, str]:
    """A fresh table of attempts and the SQL that records one (payload, time)."""
    table = f"attempts_{next(_tables)}"
    db.app_rows(f"CREATE TABLE {table} (payload TEXT NOT NULL, at DOUBLE PRECISION NOT NULL)")
    return table, f"INSERT INTO {table} (payload, at) VALUES ($1, {db.now_sql})"


def deploy_flaky(db: Backend, name: str, env: dict[str, str], **config: Any) -> None:
    response = db.server.deploy(name, build_c(FLAKY), {"env": env, **config})
    assert response.status_code in (200, 201), response.text


def invoke_async(server: ServerProcess, name: str, payload: bytes) -> str:
    response = httpx.post(
        f"{server.url}/functions/v1/invoke/{name}",
        content=payload,
        headers={**server.anon_headers(), "prefer": "respond-async"},
    )
    assert response.status_code == 202, response.text
    assert response.headers["location"].endswith(response.json()["invocation_id"])
    invocation_id: str = response.json()["invocation_id"]
    return invocation_id


def dlq(server: ServerProcess, **params: str) -> dict[str, Any]:
    response = httpx.get(
        server.url + "/functions/v1/dlq", params=params, headers=server.service_headers()
    )
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


def test_always_failing_function_gets_exactly_4_attempts_then_one_dlq_entry(
    db: Backend, fname: str
) -> None:
    table, record = attempts_table(db)
    retry = {"max_retries": 3, "backoff_ms": 300, "multiplier": 2, "jitter": 0.1}
    deploy_flaky(db, fname, {"RECORD_SQL": record, "MODE": "hang"}, timeout_ms=200, retry=retry)
    invocation = invoke_async(db.server, fname, b'{"order": 42}')

    wait_until(lambda: dlq(db.server, function=fname)["total"] == 1, 120, "the dead letter")
    time.sleep(1.5)  # no attempt after it
    times = sorted(float(row[0]) for row in db.app_rows(f"SELECT at FROM {table}"))
    assert len(times) == 4
    # Never before its backoff (300, 600, 1200 ms, -10% jitter) after the attempt ended;
    # an attempt is recorded when the guest starts, which a loaded machine may delay
    # up to its end, so the floor is the backoff alone. How much later depends on how
    # busy the machine is: the upper bound only catches a lost schedule.
    for (start, next_start), base in zip(itertools.pairwise(times), (0.3, 0.6, 1.2), strict=True):
        gap = next_start - start
        assert base * 0.9 - 0.02 <= gap <= base * 1.1 + 0.2 + 10, (base, gap)

    (entry,) = dlq(db.server, function=fname)["entries"]
    assert entry["id"] == invocation
    assert entry["attempts"] == 4
    assert entry["reason"] == "max_retries_exceeded"
    assert entry["error"]["type"] == "timeout"
    assert entry["error"]["message"].startswith("MaxRetriesExceeded after 4 attempts")
    assert entry["version"] == 1 and entry["trigger"] == "http_async"
    assert entry["first_failed_at"] < entry["last_failed_at"]
    detail = httpx.get(
        f"{db.server.url}/functions/v1/dlq/{invocation}", headers=db.server.service_headers()
    ).json()
    assert detail["payload"]["text"] == '{"order": 42}'
    state = httpx.get(
        f"{db.server.url}/functions/v1/invocations/{invocation}", headers=db.server.anon_headers()
    ).json()
    assert state["status"] == "dead"


def test_memory_limit_goes_straight_to_the_dlq(db: Backend, fname: str) -> None:
    table, record = attempts_table(db)
    deploy_flaky(db, fname, {"RECORD_SQL": record, "MODE": "oom"})
    invoke_async(db.server, fname, b"x")
    wait_until(lambda: dlq(db.server, function=fname)["total"] == 1, 20, "the dead letter")
    time.sleep(0.5)
    (entry,) = dlq(db.server, function=fname, error_type="memory_limit_exceeded")["entries"]
    assert entry["attempts"] == 1 and entry["reason"] == "non_retriable"
    assert len(db.app_rows(f"SELECT at FROM {table}")) == 1


def test_async_invocation_succeeds_and_keeps_its_result(db: Backend, fname: str) -> None:
    deploy_flaky(db, fname, {"MODE": "ok"})
    invocation = invoke_async(db.server, fname, b"hello async")
    url = f"{db.server.url}/functions/v1/invocations/{invocation}"

    def done() -> bool:
        return bool(httpx.get(url, headers=db.server.anon_headers()).json()["status"] == "done")

    wait_until(done, 20, "the async invocation")
    state = httpx.get(url, headers=db.server.anon_headers()).json()
    assert state["result"] == {"status": 200, "body": {"text": "hello async", "base64": None}}
    assert state["attempts"] == 1


def test_redrive_of_1000_dead_letters_after_a_fix(db: Backend, fname: str) -> None:
    source = f"src_{next(_tables)}"
    db.app_rows(f"CREATE TABLE {source} (id INTEGER PRIMARY KEY)")
    trigger = [{"type": "database", "table": source, "events": ["INSERT"]}]
    # With the breaker on, 1,000 failures would open it and the events would wait
    # instead of reaching the DLQ (see the breaker tests).
    no_breaker = {"enabled": False}
    response = db.server.deploy(
        fname, build_c(FLAKY), {"env": {"MODE": "crash"}, "circuit_breaker": no_breaker}, trigger
    )
    assert response.status_code == 201
    db.app_rows(
        f"INSERT INTO {source} (id) SELECT x FROM "
        + (
            "generate_series(0, 999) AS x"
            if db.pg
            else "(WITH RECURSIVE n(x) AS (SELECT 0 UNION ALL SELECT x + 1 FROM n WHERE x < 999)"
            " SELECT x FROM n)"
        )
    )
    wait_until(lambda: dlq(db.server, function=fname)["total"] == 1000, 90, "1,000 dead letters")

    table, _ = attempts_table(db)
    fixed = f"INSERT INTO {table} (payload, at) VALUES ({db.event_field('record.id')}, 0)"
    fixed_config = {"env": {"MODE": "ok", "RECORD_SQL": fixed}, "circuit_breaker": no_breaker}
    db.server.deploy(fname, build_c(FLAKY), fixed_config, trigger)
    redriven = httpx.post(
        db.server.url + "/functions/v1/dlq/retry",
        params={"function": fname},
        headers=db.server.service_headers(),
    )
    assert redriven.json() == {"requeued": 1000}
    wait_until(lambda: dlq(db.server, function=fname)["total"] == 0, 120, "an empty DLQ")
    wait_until(lambda: len(db.app_rows(f"SELECT payload FROM {table}")) >= 1000, 60, "1,000 runs")
    seen = sorted({int(row[0]) for row in db.app_rows(f"SELECT payload FROM {table}")})
    assert seen == list(range(1000))  # every payload intact


def test_breaker_opens_refuses_probes_and_closes(db: Backend, fname: str) -> None:
    table, record = attempts_table(db)
    # A cool-down long enough that a loaded machine's next call still lands inside it.
    cooldown_s = 8.0
    breaker = {"min_calls": 4, "failure_rate": 0.5, "window_s": 60, "cooldown_s": cooldown_s}
    deploy_flaky(db, fname, {"RECORD_SQL": record, "MODE": "crash"}, circuit_breaker=breaker)
    server = db.server
    for _ in range(4):
        assert server.invoke(fname, b"x").status_code == 500
    refused = server.invoke(fname, b"x")
    assert refused.status_code == 503
    assert refused.json()["error"]["type"] == "circuit_open"
    assert int(refused.headers["retry-after"]) >= 1
    assert len(db.app_rows(f"SELECT at FROM {table}")) == 4  # nothing reached the function
    view = httpx.get(
        f"{server.url}/functions/v1/functions/{fname}", headers=server.service_headers()
    ).json()
    assert view["circuit_breaker"]["state"] == "open"
    assert server.metric("functions_circuit_state", name=fname) == 2
    server.wait_for_log(operation="circuit_breaker", function=fname, state="open")

    time.sleep(cooldown_s + 0.2)
    assert server.invoke(fname, b"probe").status_code == 500  # the probe fails...
    assert server.invoke(fname, b"x").status_code == 503  # ...so it opens again
    assert len(db.app_rows(f"SELECT at FROM {table}")) == 5

    deploy_flaky(db, fname, {"RECORD_SQL": record, "MODE": "ok"}, circuit_breaker=breaker)
    queued = invoke_async(server, fname, b"queued while open")
    time.sleep(cooldown_s + 0.2)
    assert server.invoke(fname, b"probe").status_code == 200  # the probe succeeds
    assert server.invoke(fname, b"x").status_code == 200
    server.wait_for_log(operation="circuit_breaker", function=fname, state="closed")
    url = f"{server.url}/functions/v1/invocations/{queued}"
    wait_until(
        lambda: httpx.get(url, headers=server.anon_headers()).json()["status"] == "done",
        20,
        "the event queued while the circuit was open",
    )
    assert dlq(server, function=fname)["total"] == 0


def test_only_server_errors_count_for_the_breaker(db: Backend, fname: str) -> None:
    breaker = {"min_calls": 2, "failure_rate": 0.5, "window_s": 60, "cooldown_s": 30}
    deploy_flaky(
        db, fname, {"MODE": "ok"}, circuit_breaker=breaker, content_type="application/json"
    )
    for _ in range(5):
        response = db.server.invoke(fname, b"{not json", {"content-type": "application/json"})
        assert response.status_code == 400
    assert db.server.invoke(fname, b"{}").status_code == 200
