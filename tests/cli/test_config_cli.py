"""`wasmlet config NAME --set k=v --unset k`: the parsing (cli/config_set.py), then over a
real server."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
import httpx
import pytest

from tests.cli.test_cli import run_cli
from tests.support.server import ServerProcess
from tests.support.wasmgen import says
from wasmlet.cli.config_set import changes_for
from wasmlet.cli.exit_codes import ExitCode

LIVE: dict[str, Any] = {
    "timeout_ms": 800,
    "public": True,
    "env": {"KEEP": "k", "OLD": "o"},
    "retry": {"max_retries": 3, "backoff_ms": 1000},
}


def test_values_are_json_when_they_parse_else_strings() -> None:
    changes = changes_for(
        LIVE,
        ["timeout_ms=500", "public=false", "content_type=application/json",
         "allowed_hosts=[\"https://a.test\"]", "response_content_type=text/html"],
        [],
    )  # fmt: skip
    assert changes == {
        "timeout_ms": 500,
        "public": False,
        "content_type": "application/json",
        "allowed_hosts": ["https://a.test"],
        "response_content_type": "text/html",
    }


def test_dotted_keys_send_the_whole_field_with_the_key_changed() -> None:
    changes = changes_for(LIVE, ["env.NEW=42", "retry.max_retries=5"], ["env.OLD"])
    assert changes == {
        "env": {"KEEP": "k", "NEW": "42"},  # env values stay strings
        "retry": {"max_retries": 5, "backoff_ms": 1000},
    }
    assert LIVE["env"] == {"KEEP": "k", "OLD": "o"}  # the live dict is not changed


def test_unset_of_a_field_sends_its_default() -> None:
    assert changes_for(LIVE, [], ["timeout_ms", "public", "env"]) == {
        "timeout_ms": None, "public": False, "env": {},
    }  # fmt: skip


@pytest.mark.parametrize(
    ("sets", "unsets", "flag"),
    [
        (["timeout_ms"], [], "--set"),
        (["nosuch=1"], [], "--set"),
        (["env..X=1"], [], "--set"),
        (["=1"], [], "--set"),
        (["timeout_ms.x=1"], [], "--set"),
        ([], ["nosuch"], "--unset"),
    ],
)
def test_bad_keys_name_their_flag(sets: list[str], unsets: list[str], flag: str) -> None:
    with pytest.raises(click.BadParameter) as caught:
        changes_for(LIVE, sets, unsets)
    assert caught.value.param_hint == f"'{flag}'"


def _keyless(server: ServerProcess, name: str) -> httpx.Response:
    return httpx.post(f"{server.url}/functions/v1/invoke/{name}", timeout=60)


def _config(server: ServerProcess, name: str, *args: str) -> dict[str, Any]:
    done = run_cli(server, "config", name, *args)
    assert done.returncode == 0, done.stderr.decode()
    config: dict[str, Any] = json.loads(done.stdout)
    return config


def test_config_set_and_unset_over_a_real_server(
    server: ServerProcess, fname: str, tmp_path: Path
) -> None:
    module = tmp_path / "hello.wasm"
    module.write_bytes(says("hello"))
    deployed = run_cli(server, "deploy", fname, str(module), "--env", "A=1", "--env", "B=2")
    assert deployed.returncode == 0, deployed.stderr.decode()
    assert _keyless(server, fname).status_code == 401  # private

    config = _config(server, fname, "--set", "public=true", "--set", "env.C=3",
                     "--set", "timeout_ms=700", "--unset", "env.A")  # fmt: skip
    assert config["public"] is True and config["timeout_ms"] == 700
    assert config["env"] == {"B": "2", "C": "3"}
    assert _keyless(server, fname).text == "hello"  # public now, same version
    assert _config(server, fname)["env"] == {"B": "2", "C": "3"}
    assert json.loads(run_cli(server, "get", fname).stdout)["version"] == 1  # in place

    config = _config(server, fname, "--unset", "timeout_ms", "--unset", "public")
    assert config["timeout_ms"] is None and config["public"] is False
    assert config["env"] == {"B": "2", "C": "3"}

    refused = run_cli(server, "config", fname, "--set", 'timeout_ms="soon"')
    assert refused.returncode == ExitCode.INVALID_REQUEST, refused.stderr.decode()
    assert "timeout_ms" in refused.stderr.decode()
    usage = run_cli(server, "config", fname, "--set", "timeout")
    assert usage.returncode == ExitCode.USAGE and "--set" in usage.stderr.decode()
    missing = run_cli(server, "config", fname + "-none", "--set", "public=true")
    assert missing.returncode == ExitCode.NOT_FOUND
