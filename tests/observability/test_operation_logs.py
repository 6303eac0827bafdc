"""Every operation writes its JSON line with the spec's fields, through a real server:
deploy, invoke, trigger delivery, retry, dead letter, breaker transition, scheduler
tick, worker crash and restart. Lines are parsed, never grepped; and no key or secret
appears anywhere in the server's output."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.appdb import Backend, backend, wait_until
from tests.support.build import wat

SPIN_ON_S = (Path(__file__).parent.parent / "fixtures" / "spin_on_s.wat").read_text()
SPEC_FIELDS = {
    "level", "service", "operation", "function", "error", "duration_ms", "user_id",
    "request_id", "timestamp",
}  # fmt: skip
LEVELS = {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}
ENV_SECRET = "env-secret-value-0123456789"


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Backend]:
    with backend("sqlite", tmp_path_factory.mktemp("oplogs"), WASMLET_WORKERS="2") as b:
        yield b


def spec_line(db: Backend, timeout_s: float = 30, **match: Any) -> dict[str, Any]:
    """The first line matching `match`, checked to have every spec field, well typed."""
    line = db.server.wait_for_log(timeout_s=timeout_s, **match)
    missing = SPEC_FIELDS - set(line)
    assert not missing, (missing, line)
    assert line["level"] in LEVELS
    assert line["service"] == "functions"
    assert isinstance(line["operation"], str) and line["operation"]
    for field in ("function", "error", "user_id", "request_id"):
        assert line[field] is None or isinstance(line[field], str), (field, line)
    assert line["duration_ms"] is None or isinstance(line["duration_ms"], int | float)
    stamp = datetime.fromisoformat(line["timestamp"].replace("Z", "+00:00"))
    assert stamp.utcoffset() == timedelta(0)
    return line


def test_deploy_and_a_refused_deploy(db: Backend, fname: str) -> None:
    response = db.server.deploy(fname, wat("hello"), {"env": {"API_TOKEN": ENV_SECRET}})
    assert response.status_code == 201
    line = spec_line(db, operation="deploy", function=fname)
    assert (line["level"], line["error"], line["version"]) == ("INFO", None, 1)
    assert db.server.deploy(fname, b"not wasm").status_code == 400
    refused = spec_line(db, operation="deploy", function=fname, level="WARNING")
    assert refused["error"].startswith("400 Invalid WASM binary")
    assert refused["error_type"] == "invalid_wasm"


def test_invoke_success_failure_and_refusal(db: Backend, fname: str) -> None:
    db.server.deploy(fname, wat("trap"))
    failed = db.server.invoke(fname)
    assert failed.status_code == 500
    line = spec_line(db, operation="invoke", request_id=failed.headers["x-request-id"])
    assert (line["level"], line["function"], line["status"]) == ("ERROR", fname, 500)
    assert line["error"].startswith("500 Function error") and line["duration_ms"] > 0
    assert line["user_id"] is None

    db.server.deploy(fname, wat("hello"))
    ok = db.server.invoke(fname)
    line = spec_line(db, operation="invoke", request_id=ok.headers["x-request-id"])
    assert (line["level"], line["error"], line["status"]) == ("INFO", None, 200)

    missing = db.server.invoke(f"{fname}-missing")
    line = spec_line(db, operation="invoke", request_id=missing.headers["x-request-id"])
    assert (line["level"], line["error"]) == ("WARNING", f"404 Function not found: {fname}-missing")


def test_trigger_delivery(db: Backend, fname: str) -> None:
    table = fname.replace("-", "_")
    db.app_rows(f"CREATE TABLE {table} (id INTEGER PRIMARY KEY)")
    trigger = [{"type": "database", "table": table, "events": ["INSERT"]}]
    assert db.server.deploy(fname, wat("hello"), None, trigger).status_code == 201
    db.app_rows(f"INSERT INTO {table} (id) VALUES (1)")
    line = spec_line(db, timeout_s=60, operation="deliver", function=fname)
    assert (line["level"], line["error"], line["status"], line["trigger"]) == (
        "INFO", None, 200, "database",
    )  # fmt: skip
    assert line["request_id"] == line["event_id"] and line["duration_ms"] > 0
    invoked = spec_line(db, operation="invoke", request_id=line["request_id"])
    assert invoked["trigger"] == "database"


def test_retry_then_dead_letter(db: Backend, fname: str) -> None:
    retry = {"max_retries": 1, "backoff_ms": 50, "multiplier": 1, "jitter": 0}
    db.server.deploy(fname, wat(SPIN_ON_S), {"timeout_ms": 200, "retry": retry})
    response = httpx.post(
        f"{db.server.url}/functions/v1/invoke/{fname}",
        content=b"spin",
        headers={**db.server.anon_headers(), "prefer": "respond-async"},
    )
    assert response.status_code == 202
    invocation = response.json()["invocation_id"]
    retried = spec_line(db, timeout_s=60, operation="retry", function=fname)
    assert (retried["level"], retried["request_id"], retried["attempt"]) == (
        "WARNING", invocation, 1,
    )  # fmt: skip
    assert retried["error"] == "504 Function timeout after 0.2s"
    dead = spec_line(db, timeout_s=60, operation="dead_letter", function=fname)
    assert (dead["level"], dead["request_id"], dead["attempt"]) == ("ERROR", invocation, 2)
    assert dead["error"].startswith("504 MaxRetriesExceeded after 2 attempts")


def test_breaker_transition(db: Backend, fname: str) -> None:
    breaker = {"min_calls": 2, "failure_rate": 0.5, "window_s": 60, "cooldown_s": 30}
    db.server.deploy(fname, wat("trap"), {"circuit_breaker": breaker})
    for _ in range(2):
        assert db.server.invoke(fname).status_code == 500
    line = spec_line(db, operation="circuit_breaker", function=fname, state="open")
    assert (line["level"], line["previous"], line["error"]) == ("WARNING", "closed", None)


def test_worker_crash_and_restart(db: Backend) -> None:
    started = spec_line(db, operation="worker", message="worker started")
    victim = started["pid"]
    alive = {line["pid"] for line in db.server.json_logs() if line.get("operation") == "worker"}
    os.kill(victim, signal.SIGKILL)
    crashed = spec_line(db, operation="worker", message="worker crashed", pid=victim)
    assert crashed["level"] == "ERROR" and crashed["error"] == "killed by signal SIGKILL"
    restarted = spec_line(db, operation="worker", message="worker restarted")
    assert restarted["level"] == "INFO" and restarted["pid"] not in alive
    wait_until(lambda: db.server.metric("functions_workers_alive") == 2, 10, "a replacement")


def test_scheduler_tick(db: Backend, fname: str) -> None:
    every_second = {"type": "schedule", "cron": "* * * * * *"}
    assert db.server.deploy(fname, wat("hello"), None, [every_second]).status_code == 201
    # Ticks log a line when they enqueue runs; the run itself is delivered like any job.
    line = spec_line(db, timeout_s=60, operation="schedule", message="scheduler tick")
    assert line["level"] == "INFO" and line["enqueued"] >= 1
    spec_line(db, timeout_s=60, operation="deliver", function=fname, trigger="schedule")
    httpx.delete(
        f"{db.server.url}/functions/v1/functions/{fname}", headers=db.server.service_headers()
    )


def test_no_key_or_secret_is_ever_written(db: Backend, fname: str) -> None:
    """Runs last in this module: every line the server wrote so far."""
    db.server.deploy(fname, wat("trap"), {"env": {"PASSWORD": ENV_SECRET}})
    db.server.invoke(fname, headers={"authorization": f"Bearer {db.server.service_key}"})
    httpx.get(
        f"{db.server.url}/functions/v1/functions/{fname}/logs",
        headers={"apikey": db.server.service_key},
    )
    spec_line(db, operation="invoke", function=fname)
    output = "\n".join(db.server.lines)
    assert db.server.service_key and db.server.service_key not in output
    assert db.server.anon_key and db.server.anon_key not in output
    assert ENV_SECRET not in output
