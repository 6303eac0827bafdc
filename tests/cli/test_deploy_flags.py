"""The `wasmlet deploy` trigger and config flags: parsing and merging (cli/deploy_flags.py),
then over a real server."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import click
import httpx
import pytest

from tests.cli.test_cli import run_cli
from tests.support.server import ServerProcess
from tests.support.wasmgen import says
from wasmlet.cli.deploy_flags import (
    DeployFlags,
    merge_config,
    merge_triggers,
    parse_deploy_flags,
)
from wasmlet.cli.exit_codes import ExitCode


def _parse(**given: Any) -> DeployFlags:
    flags: dict[str, Any] = {
        "cron": None, "timezone": None, "on_table": None, "events": None, "env": (),
        "allow_host": (),
    }  # fmt: skip
    return parse_deploy_flags(**{**flags, **given})


def test_flags_build_triggers_and_config() -> None:
    parsed = _parse(
        cron="*/5  * * * *",
        timezone="Europe/Paris",
        on_table="public.users",
        events="insert, UPDATE,insert",
        env=("A=1", "B=x=y", "A=2"),
        allow_host=("https://api.example.test", "https://api.example.test"),
    )
    schedule, database = parsed.triggers
    assert schedule["type"] == "schedule"
    assert schedule["cron"] == "*/5 * * * *" and schedule["timezone"] == "Europe/Paris"
    assert database == {"type": "database", "table": "public.users", "events": ["INSERT", "UPDATE"]}
    assert parsed.env == {"A": "2", "B": "x=y"}
    assert parsed.allowed_hosts == ["https://api.example.test"]


def test_no_flags_change_nothing() -> None:
    parsed = _parse()
    assert parsed.triggers == [] and not parsed.changes_config


@pytest.mark.parametrize(
    ("given", "flag"),
    [
        ({"cron": "every minute"}, "--cron"),
        ({"cron": "* * *"}, "--cron"),
        ({"cron": "* * * * *", "timezone": "Mars/Olympus"}, "--timezone"),
        ({"on_table": "1users"}, "--on-table"),
        ({"on_table": "users; drop table x"}, "--on-table"),
        ({"on_table": "users", "events": "INSERT,TRUNCATE"}, "--events"),
        ({"on_table": "users", "events": ","}, "--events"),
        ({"env": ("NOEQUALS",)}, "--env"),
        ({"env": ("=v",)}, "--env"),
        ({"env": ("1BAD=v",)}, "--env"),
        ({"allow_host": ("not a host at all/..",)}, "--allow-host"),
    ],
)
def test_bad_values_name_their_flag(given: dict[str, Any], flag: str) -> None:
    with pytest.raises(click.BadParameter) as caught:
        _parse(**given)
    assert caught.value.param_hint == f"'{flag}'"


@pytest.mark.parametrize(
    ("given", "needs"), [({"timezone": "UTC"}, "--cron"), ({"events": "INSERT"}, "--on-table")]
)
def test_companion_flags_need_their_main_flag(given: dict[str, Any], needs: str) -> None:
    with pytest.raises(click.UsageError, match=needs):
        _parse(**given)


def test_merge_config_sets_env_names_and_adds_hosts() -> None:
    deployed = {"env": {"KEEP": "k", "A": "old"}, "allowed_hosts": ["https://a.test"]}
    flags = DeployFlags({"A": "new"}, ["https://b.test", "https://a.test"], [])
    assert merge_config(deployed, flags) == {
        "env": {"KEEP": "k", "A": "new"},
        "allowed_hosts": ["https://a.test", "https://b.test"],
    }
    assert merge_config({}, DeployFlags({}, ["https://b.test"], [])) == {
        "allowed_hosts": ["https://b.test"]
    }


def test_merge_triggers_adds_and_replaces_same_target() -> None:
    live: list[dict[str, Any]] = [
        {"type": "http"},
        {"type": "database", "table": "public.users", "events": ["INSERT"]},
        {"type": "schedule", "cron": "0 * * * *", "timezone": "UTC"},
    ]
    users = {"type": "database", "table": "users", "events": ["UPDATE"]}
    nightly = {"type": "schedule", "cron": "0 3 * * *", "timezone": "UTC"}
    merged = merge_triggers(live, [users, nightly])
    assert merged == [live[0], live[2], users, nightly]
    assert merge_triggers(None, [nightly]) == [{"type": "http"}, nightly]
    same = {"type": "schedule", "cron": "0 * * * *", "timezone": "UTC", "catch_up": "all"}
    assert merge_triggers(live, [same]) == [live[0], live[1], same]


def _record(server: ServerProcess, name: str) -> dict[str, Any]:
    response = httpx.get(
        f"{server.url}/functions/v1/functions/{name}", headers=server.service_headers(), timeout=30
    )
    assert response.status_code == 200, response.text
    record: dict[str, Any] = response.json()
    return record


def _deploy(server: ServerProcess, *args: str) -> None:
    done = run_cli(server, "deploy", *args)
    assert done.returncode == 0, done.stderr.decode()


def test_deploy_flags_over_a_real_server(server: ServerProcess, fname: str, tmp_path: Path) -> None:
    table = fname.replace("-", "_")
    with sqlite3.connect(server.data_dir / "app.db", timeout=30) as conn:
        conn.execute(f"CREATE TABLE {table} (id INTEGER PRIMARY KEY)")
    module = tmp_path / "hello.wasm"
    module.write_bytes(says("hello"))
    _deploy(
        server, fname, str(module), "--public", "--cron", "*/5 * * * *",
        "--timezone", "Europe/Paris", "--on-table", table, "--events", "INSERT,UPDATE",
        "--env", "A=1", "--env", "B=two=2", "--allow-host", "https://api.example.test",
    )  # fmt: skip
    record = _record(server, fname)
    assert record["config"]["env"] == {"A": "1", "B": "two=2"}
    assert record["config"]["allowed_hosts"] == ["https://api.example.test"]
    kinds = {t["type"]: t for t in record["triggers"]}
    assert set(kinds) == {"http", "schedule", "database"}
    assert (kinds["schedule"]["cron"], kinds["schedule"]["timezone"]) == (
        "*/5 * * * *", "Europe/Paris",
    )  # fmt: skip
    assert kinds["database"]["events"] == ["INSERT", "UPDATE"]
    assert server.invoke(fname).text == "hello"
    listed = run_cli(server, "schedules", "list").stdout.decode()
    assert any(fname in line and "Europe/Paris" in line for line in listed.splitlines())

    # A redeploy with other flags keeps env, hosts and triggers, and sets what it names.
    _deploy(server, fname, str(module), "--env", "A=9", "--timeout-ms", "900")
    record = _record(server, fname)
    assert record["config"]["env"] == {"A": "9", "B": "two=2"}
    assert record["config"]["timeout_ms"] == 900
    assert record["config"]["allowed_hosts"] == ["https://api.example.test"]
    assert {t["type"] for t in record["triggers"]} == {"http", "schedule", "database"}

    # A trigger on the same table replaces the live one; the schedule stays.
    _deploy(server, fname, str(module), "--on-table", table, "--events", "DELETE")
    triggers = _record(server, fname)["triggers"]
    [database] = [t for t in triggers if t["type"] == "database"]
    assert database["events"] == ["DELETE"]
    assert [t["type"] for t in triggers].count("schedule") == 1


@pytest.mark.parametrize(
    ("args", "flag"),
    [
        (("--cron", "every minute"), "--cron"),
        (("--cron", "* * * * *", "--timezone", "Nowhere/Else"), "--timezone"),
        (("--on-table", "users", "--events", "INSERT,TRUNCATE"), "--events"),
        (("--env", "1X=v"), "--env"),
        (("--allow-host", "::nope::"), "--allow-host"),
        (("--events", "INSERT"), "--on-table"),
    ],
)
def test_bad_flag_is_a_usage_error_before_any_request(
    tmp_path: Path, args: tuple[str, ...], flag: str
) -> None:
    module = tmp_path / "hello.wasm"
    module.write_bytes(says("hello"))
    env = {**os.environ, "WASMLET_URL": "http://127.0.0.1:9", "WASMLET_KEY": "k"}
    done = subprocess.run(
        [sys.executable, "-m", "wasmlet", "deploy", "f", str(module), *args],
        capture_output=True, env=env, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == ExitCode.USAGE, done.stderr.decode()  # not CONNECTION_FAILED
    assert flag in done.stderr.decode()
