"""Scheduled functions through the real server, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.api.test_reliability import FLAKY, dlq
from tests.cli.test_cli import run_cli
from tests.support.appdb import Backend, backend, wait_until
from tests.support.build import build_c, wat

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
EVERY_SECOND = {"type": "schedule", "cron": "* * * * * *", "timezone": "Europe/Paris"}


@pytest.fixture(scope="module", params=BACKENDS)
def db(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Backend]:
    with backend(request.param, tmp_path_factory.mktemp("schedules")) as b:
        yield b


def schedules(db: Backend) -> list[dict[str, object]]:
    response = httpx.get(
        db.server.url + "/functions/v1/schedules", headers=db.server.service_headers()
    )
    assert response.status_code == 200
    listed: list[dict[str, object]] = response.json()["schedules"]
    return listed


def test_a_scheduled_function_runs_and_knows_both_times(db: Backend, fname: str) -> None:
    table = fname.replace("-", "_")
    db.app_rows(f"CREATE TABLE {table} (payload TEXT NOT NULL)")
    config = {"env": {"RECORD_SQL": f"INSERT INTO {table} (payload) VALUES ($1)"}}
    assert db.server.deploy(fname, build_c(FLAKY), config, [EVERY_SECOND]).status_code == 201
    wait_until(lambda: len(db.app_rows(f"SELECT payload FROM {table}")) >= 3, 15, "three runs")
    runs = [json.loads(row[0]) for row in db.app_rows(f"SELECT payload FROM {table}")]
    for run in runs:
        assert run["type"] == "schedule" and run["schedule"] == "* * * * * *"
        assert run["started_at_epoch"] >= run["scheduled_at_epoch"]
        assert run["started_at_epoch"] - run["scheduled_at_epoch"] < 5
        assert run["scheduled_at_epoch"] == int(run["scheduled_at_epoch"])
    assert len({run["scheduled_at"] for run in runs}) == len(runs)  # never twice
    (listed,) = [s for s in schedules(db) if s["function"] == fname]
    assert listed["timezone"] == "Europe/Paris" and listed["next_run"]
    assert listed["last_outcome"] is not None
    health = httpx.get(db.server.url + "/health").json()
    assert health["scheduler"]["healthy"] is True
    httpx.delete(
        f"{db.server.url}/functions/v1/functions/{fname}", headers=db.server.service_headers()
    )
    assert not [s for s in schedules(db) if s["function"] == fname]


@pytest.mark.parametrize(
    "trigger",
    [
        {"type": "schedule", "cron": "61 * * * *"},
        {"type": "schedule", "cron": "*/5 * * * *", "timezone": "Nowhere/Special"},
        {"type": "schedule", "cron": "*/5 * * * *", "catch_up": "sometimes"},
    ],
    ids=["bad-cron", "bad-zone", "bad-policy"],
)
def test_invalid_schedule_is_400(db: Backend, fname: str, trigger: dict[str, object]) -> None:
    response = db.server.deploy(fname, wat("hello"), None, [trigger])
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_trigger"


def test_pause_resume_and_run_now(db: Backend, fname: str) -> None:
    table = fname.replace("-", "_")
    db.app_rows(f"CREATE TABLE {table} (payload TEXT NOT NULL)")
    config = {"env": {"RECORD_SQL": f"INSERT INTO {table} (payload) VALUES ($1)"}}
    trigger = {**EVERY_SECOND, "catch_up": "none"}
    db.server.deploy(fname, build_c(FLAKY), config, [trigger])
    (listed,) = [s for s in schedules(db) if s["function"] == fname]
    sid = str(listed["id"])

    def count() -> int:
        return len(db.app_rows(f"SELECT payload FROM {table}"))

    wait_until(lambda: count() >= 1, 10, "a first run")
    paused = run_cli(db.server, "schedules", "pause", fname, sid)
    assert paused.returncode == 0 and json.loads(paused.stdout)["paused"] is True
    time.sleep(1.0)  # a run already queued may still finish
    frozen = count()
    time.sleep(2.5)
    assert count() == frozen
    now = run_cli(db.server, "schedules", "run", fname, sid)
    assert now.returncode == 0
    wait_until(lambda: count() == frozen + 1, 10, "the manual run")
    manual = [json.loads(r[0]) for r in db.app_rows(f"SELECT payload FROM {table}")]
    assert any(run.get("manual") for run in manual)
    listing = run_cli(db.server, "schedules", "list").stdout.decode()
    assert any(fname in line and "paused" in line.split() for line in listing.splitlines())
    run_cli(db.server, "schedules", "resume", fname, sid)
    wait_until(lambda: count() >= frozen + 3, 10, "runs after resuming")


def test_a_failing_scheduled_function_is_retried_then_dead_lettered(
    db: Backend, fname: str
) -> None:
    config = {
        "env": {"MODE": "hang"},
        "timeout_ms": 200,
        "retry": {"max_retries": 1, "backoff_ms": 100},
        "circuit_breaker": {"enabled": False},
    }
    db.server.deploy(fname, build_c(FLAKY), config, [{**EVERY_SECOND, "catch_up": "none"}])
    wait_until(lambda: dlq(db.server, function=fname)["total"] >= 1, 20, "a dead letter")
    httpx.delete(
        f"{db.server.url}/functions/v1/functions/{fname}", headers=db.server.service_headers()
    )
    entry = dlq(db.server, function=fname)["entries"][0]
    assert entry["trigger"] == "schedule"
    assert entry["attempts"] == 2
    assert entry["reason"] == "max_retries_exceeded"
    assert entry["error"]["type"] == "timeout"
