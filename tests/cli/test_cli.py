"""The `wasmlet` command against a real server: output and exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.support.build import wat
from tests.support.server import ServerProcess, free_port
from wasmlet.cli.exit_codes import ExitCode


def run_cli(
    server: ServerProcess | None, *args: str, stdin: bytes = b""
) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ}
    if server is not None:
        env["WASMLET_URL"] = server.url
        env["WASMLET_KEY"] = server.service_key
    return subprocess.run(
        [sys.executable, "-m", "wasmlet", *args],
        input=stdin,
        capture_output=True,
        env=env,
        timeout=60,
        check=False,
    )


@pytest.fixture
def hello_file(tmp_path: Path) -> Path:
    path = tmp_path / "hello.wasm"
    path.write_bytes(wat("hello"))
    return path


def test_exit_codes_are_pinned() -> None:
    assert {code.name: int(code) for code in ExitCode} == {
        "OK": 0,
        "FUNCTION_FAILED": 1,
        "USAGE": 2,
        "NOT_FOUND": 3,
        "UNAUTHORIZED": 4,
        "INVALID_REQUEST": 5,
        "UNAVAILABLE": 6,
        "CONNECTION_FAILED": 7,
    }


def test_deploy_invoke_list_get_disable_enable_delete(
    server: ServerProcess, fname: str, hello_file: Path, tmp_path: Path
) -> None:
    done = run_cli(server, "deploy", fname, str(hello_file), "--timeout-ms", "2000")
    assert done.returncode == 0, done.stderr
    assert f"deployed {fname} version 1" in done.stdout.decode()

    done = run_cli(server, "invoke", fname)
    assert done.returncode == 0
    assert done.stdout == b"Hello, wasmlet!"

    listed = run_cli(server, "list")
    assert listed.returncode == 0 and fname in listed.stdout.decode()

    got = run_cli(server, "get", fname)
    assert got.returncode == 0 and '"timeout_ms": 2000' in got.stdout.decode()

    assert run_cli(server, "disable", fname).returncode == 0
    missing = run_cli(server, "invoke", fname)
    assert missing.returncode == ExitCode.NOT_FOUND
    assert b"function_not_found" in missing.stderr
    assert run_cli(server, "enable", fname).returncode == 0
    assert run_cli(server, "invoke", fname).returncode == 0

    echo = tmp_path / "echo.wasm"
    echo.write_bytes(wat("echo"))
    assert run_cli(server, "deploy", fname, str(echo)).returncode == 0
    piped = run_cli(server, "invoke", fname, "--data", "-", stdin=b"from stdin")
    assert piped.stdout == b"from stdin"

    assert run_cli(server, "delete", fname).returncode == 0
    assert run_cli(server, "get", fname).returncode == ExitCode.NOT_FOUND


def test_failures_map_to_exit_codes(server: ServerProcess, fname: str, tmp_path: Path) -> None:
    trap = tmp_path / "trap.wasm"
    trap.write_bytes(wat("trap"))
    assert run_cli(server, "deploy", fname, str(trap)).returncode == 0
    failed = run_cli(server, "invoke", fname)
    assert failed.returncode == ExitCode.FUNCTION_FAILED
    assert b"500 function_error" in failed.stderr
    assert b"request id:" in failed.stderr

    bad = tmp_path / "bad.wasm"
    bad.write_bytes(b"garbage")
    refused = run_cli(server, "deploy", fname + "x", str(bad))
    assert refused.returncode == ExitCode.INVALID_REQUEST
    assert b"invalid_wasm" in refused.stderr

    env_key = run_cli(None, "list", "--url", server.url, "--key", "wrong")
    assert env_key.returncode == ExitCode.UNAUTHORIZED

    nowhere = run_cli(None, "list", "--url", f"http://127.0.0.1:{free_port()}", "--key", "k")
    assert nowhere.returncode == ExitCode.CONNECTION_FAILED

    usage = run_cli(server, "invoke")
    assert usage.returncode == ExitCode.USAGE


def test_keys_command_creates_and_shows_keys(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    first = run_cli(None, "keys", "--data-dir", str(data_dir), "--create")
    assert first.returncode == 0
    second = run_cli(None, "keys", "--data-dir", str(data_dir))
    assert first.stdout == second.stdout
    lines = first.stdout.decode().splitlines()
    assert lines[0].startswith("service_key: sk_")
    assert lines[1].startswith("anon_key:    ak_")
    assert (data_dir / "keys.json").stat().st_mode & 0o077 == 0


def test_server_shows_the_keys_it_created(server: ServerProcess) -> None:
    shown = run_cli(None, "keys", "--data-dir", str(server.data_dir))
    assert server.service_key in shown.stdout.decode()
    assert server.anon_key in shown.stdout.decode()


def test_async_invoke_and_the_dead_letter_commands(
    server: ServerProcess, fname: str, tmp_path: Path
) -> None:
    trap = tmp_path / "trap.wasm"
    trap.write_bytes(wat("trap"))
    assert run_cli(server, "deploy", fname, str(trap)).returncode == 0
    queued = run_cli(server, "invoke", fname, "--async", "--data", "payload-1")
    assert queued.returncode == 0
    invocation_id = queued.stdout.decode().strip()

    deadline = time.monotonic() + 60
    while fname not in run_cli(server, "dlq", "list", "--function", fname).stdout.decode():
        assert time.monotonic() < deadline, "no dead letter"
        time.sleep(0.1)
    listed = run_cli(server, "dlq", "list", "--function", fname).stdout.decode()
    assert "1 dead letter(s)" in listed and invocation_id in listed
    shown = run_cli(server, "dlq", "show", invocation_id)
    assert json.loads(shown.stdout)["payload"]["text"] == "payload-1"
    assert run_cli(server, "dlq", "retry").returncode == ExitCode.USAGE

    hello = tmp_path / "hello.wasm"
    hello.write_bytes(wat("hello"))
    run_cli(server, "deploy", fname, str(hello))
    retried = run_cli(server, "dlq", "retry", "--function", fname)
    assert retried.stdout.decode().strip() == "requeued 1"
    deadline = time.monotonic() + 60
    while (
        "0 dead letter(s)"
        not in run_cli(server, "dlq", "list", "--function", fname).stdout.decode()
    ):
        assert time.monotonic() < deadline, "the retried entry stayed dead"
        time.sleep(0.1)
    missing = run_cli(server, "dlq", "show", invocation_id)
    assert missing.returncode == ExitCode.NOT_FOUND


def test_nodes_lists_the_one_sqlite_node(server: ServerProcess) -> None:
    done = run_cli(server, "nodes")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.decode().splitlines()
    assert lines[0].split()[:3] == ["ID", "ADDRESS", "VERSION"]
    (row,) = lines[1:]
    assert f"127.0.0.1:{server.port}" in row and " live " in row and row.endswith(" *")


def test_secrets_set_list_unset_never_print_values(server: ServerProcess, tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text(
        "# comment\nexport CLI_FROM_FILE='file-value-5a8c2e71'\n\nCLI_QUOTED=\"q-value-77e1\"\n"
    )
    done = run_cli(server, "secrets", "set", "CLI_ARG=arg-value-0c3d9f12", "--env-file",
                   str(env_file))  # fmt: skip
    assert done.returncode == 0, done.stderr
    listed = run_cli(server, "secrets", "list")
    assert listed.returncode == 0, listed.stderr
    out = done.stdout + listed.stdout
    for name in (b"CLI_ARG", b"CLI_FROM_FILE", b"CLI_QUOTED"):
        assert name in listed.stdout
    assert b"value" not in out
    with httpx.Client(base_url=server.url, headers=server.service_headers()) as http:
        digests = {
            s["name"]: s["digest"] for s in http.get("/functions/v1/secrets").json()["secrets"]
        }
    # The quotes and `export ` are gone: the same value set again keeps its digest.
    again = run_cli(server, "secrets", "set", "CLI_FROM_FILE=file-value-5a8c2e71")
    assert again.returncode == 0, again.stderr
    with httpx.Client(base_url=server.url, headers=server.service_headers()) as http:
        after = {
            s["name"]: s["digest"] for s in http.get("/functions/v1/secrets").json()["secrets"]
        }
    assert after["CLI_FROM_FILE"] == digests["CLI_FROM_FILE"]
    assert run_cli(server, "secrets", "unset", "CLI_ARG", "CLI_QUOTED").returncode == 0
    assert b"CLI_ARG" not in run_cli(server, "secrets", "list").stdout
    missing = run_cli(server, "secrets", "unset", "CLI_ARG")
    assert missing.returncode == ExitCode.NOT_FOUND
    refused = run_cli(server, "secrets", "set", "WASMLET_NOPE=secret-value-1234")
    assert refused.returncode == ExitCode.INVALID_REQUEST and b"secret-value" not in refused.stderr


def _digests(server: ServerProcess) -> dict[str, str]:
    answer = httpx.get(f"{server.url}/functions/v1/secrets", headers=server.service_headers())
    return {s["name"]: s["digest"] for s in answer.json()["secrets"]}


def test_a_redeploy_with_flags_merges_into_the_deployed_config(
    server: ServerProcess, fname: str, hello_file: Path
) -> None:
    first = '{"env": {"KEEP": "kept"}, "retry": {"max_retries": 1}, "timeout_ms": 1000}'
    assert run_cli(server, "deploy", fname, str(hello_file), "--config", first).returncode == 0
    done = run_cli(server, "deploy", fname, str(hello_file), "--timeout-ms", "2000")
    assert done.returncode == 0, done.stderr
    config = json.loads(run_cli(server, "get", fname).stdout)["config"]
    assert config["env"] == {"KEEP": "kept"} and config["retry"]["max_retries"] == 1
    assert config["timeout_ms"] == 2000
    done = run_cli(server, "deploy", fname, str(hello_file), "--config", '{"public": true}')
    assert done.returncode == 0, done.stderr
    config = json.loads(run_cli(server, "get", fname).stdout)["config"]
    assert config["env"] == {"KEEP": "kept"} and config["public"] is True
    replaced = run_cli(server, "deploy", fname, str(hello_file), "--memory-mb", "64",
                       "--replace-config")  # fmt: skip
    assert replaced.returncode == 0, replaced.stderr
    config = json.loads(run_cli(server, "get", fname).stdout)["config"]
    assert config["env"] == {} and config["memory_mb"] == 64 and config["timeout_ms"] is None


def test_deploy_verify_jwt_flags_merge_into_the_config(
    server: ServerProcess, fname: str, hello_file: Path
) -> None:
    done = run_cli(server, "deploy", fname, str(hello_file), "--no-verify-jwt")
    assert done.returncode == 0, done.stderr
    assert json.loads(run_cli(server, "get", fname).stdout)["config"]["verify_jwt"] is False
    done = run_cli(server, "deploy", fname, str(hello_file), "--timeout-ms", "2000")
    assert done.returncode == 0, done.stderr
    config = json.loads(run_cli(server, "get", fname).stdout)["config"]
    assert config["verify_jwt"] is False and config["timeout_ms"] == 2000
    done = run_cli(server, "deploy", fname, str(hello_file), "--verify-jwt")
    assert done.returncode == 0, done.stderr
    assert json.loads(run_cli(server, "get", fname).stdout)["config"]["verify_jwt"] is True
