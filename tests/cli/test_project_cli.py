"""A project folder end to end, through the real `wasmlet` command and a real server:
`init`, `new` (js, ts, c), `deploy` of the manifest (a cron and a database trigger,
only what changed, the first error with file:line:column), `invoke`, `rollback`, a
redeploy with a flag that keeps env and secrets, and an unknown manifest key."""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import pytest

from tests.support.server import ServerProcess
from wasmlet.cli.exit_codes import ExitCode

DEPLOY_TIMEOUT_S = 900  # a loaded machine, a first zig build of wasi-libc


def cli(
    cwd: Path, server: ServerProcess | None, *args: str, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WASMLET_")}
    env["XDG_CONFIG_HOME"] = str(cwd / ".no-profile")
    if server is not None:
        env["WASMLET_URL"] = server.url
        env["WASMLET_SERVICE_KEY"] = server.service_key
    return subprocess.run(
        [sys.executable, "-m", "wasmlet", *args],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False,
    )  # fmt: skip


def ok(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 0, f"{done.args}\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.mark.timeout(DEPLOY_TIMEOUT_S)  # about 20 CLI processes; 300 s was hit under load
def test_init_new_deploy_invoke_rollback(  # noqa: PLR0915 (one user session, in order)
    server: ServerProcess, tmp_path: Path
) -> None:
    tag = uuid.uuid4().hex[:8]
    js, ts, c = f"hello-{tag}", f"greet-{tag}", f"native-{tag}"
    table = f"orders_{tag}"
    secret = f"PROJ_TOKEN_{tag.upper()}"
    with sqlite3.connect(server.data_dir / "app.db", timeout=30) as conn:
        conn.execute(f"CREATE TABLE {table} (id INTEGER PRIMARY KEY)")
    project = tmp_path / "project"
    project.mkdir()

    init = ok(cli(project, None, "init", "--name", js))
    assert (project / "wasmlet.toml").is_file()
    assert (project / "functions" / js / "index.js").is_file()
    assert "wasmlet dev" in init
    ok(cli(project, None, "new", ts, "--lang", "ts"))
    ok(cli(project, None, "new", c, "--lang", "c"))
    assert (project / "functions" / ts / "index.ts").is_file()
    assert (project / "functions" / c / f"{c}.c").is_file()
    manifest = project / "wasmlet.toml"
    text = manifest.read_text()
    assert f"python -m ziglang cc -target wasm32-wasi -O2 -s functions/{c}/{c}.c" in text
    source = project / "functions" / js / "index.js"
    source.write_text(
        source.read_text().replace(
            "return `Hello, ${name}!`;",
            f"return `${{process.env.GREETING}} ${{process.env.{secret}}} ${{name}}`;",
        )
    )
    manifest.write_text(
        text.replace(
            f'[[functions.{js}.triggers]]\ntype = "http"\n',
            f'[[functions.{js}.triggers]]\ntype = "http"\n\n'
            f'[[functions.{js}.triggers]]\ntype = "schedule"\ncron = "*/5 * * * *"\n'
            f'timezone = "Europe/Paris"\ncatch_up = "none"\n\n'
            f'[[functions.{js}.triggers]]\ntype = "database"\ntable = "{table}"\n'
            f'events = ["INSERT", "UPDATE"]\n',
            1,
        ).replace('# secrets = ["API_TOKEN"]', f'secrets = ["{secret}"]', 1)
    )

    missing = cli(project, server, "deploy", js, timeout=DEPLOY_TIMEOUT_S)
    assert missing.returncode != 0 and f"{secret} not set" in missing.stderr
    ok(cli(project, server, "secrets", "set", f"{secret}=s3cret"))

    first = ok(cli(project, server, "deploy", timeout=DEPLOY_TIMEOUT_S))
    for name in (js, ts, c):
        assert re.search(rf"^deployed\s+{name} version 1$", first, re.M), first
    assert "3 function(s): 3 deployed, 0 unchanged, 0 failed" in first
    assert ok(cli(project, server, "invoke", js, "-d", "world")) == "hello s3cret world"
    assert ok(cli(project, server, "invoke", ts, "-d", "world")) == "Hello, world!"
    assert ok(cli(project, server, "invoke", c, "-d", "world")) == "Hello, world!"
    record = httpx.get(
        f"{server.url}/functions/v1/functions/{js}", headers=server.service_headers(), timeout=30
    ).json()
    kinds = {t["type"]: t for t in record["triggers"]}
    assert kinds["schedule"]["timezone"] == "Europe/Paris"
    assert kinds["schedule"]["catch_up"] == "none"
    assert kinds["database"]["events"] == ["INSERT", "UPDATE"]
    assert record["config"]["env"] == {"GREETING": "hello"}
    listed = ok(cli(project, server, "schedules", "list"))
    assert any(js in line and "Europe/Paris" in line for line in listed.splitlines())

    again = ok(cli(project, server, "deploy", timeout=DEPLOY_TIMEOUT_S))
    assert "0 deployed, 3 unchanged" in again, again

    source.write_text(source.read_text().replace("${name}`", "${name}!`"))
    second = ok(cli(project, server, "deploy", timeout=DEPLOY_TIMEOUT_S))
    assert re.search(rf"^deployed\s+{js} version 2$", second, re.M), second
    assert "1 deployed, 2 unchanged" in second
    assert ok(cli(project, server, "invoke", js, "-d", "world")) == "hello s3cret world!"

    # The first error with file:line:column; the live version keeps serving.
    good = source.read_text()
    source.write_text(good + "\nconst broken = ;\n")
    broken_line = len(good.splitlines()) + 2
    failed = cli(project, server, "deploy", timeout=DEPLOY_TIMEOUT_S)
    assert failed.returncode == ExitCode.INVALID_REQUEST, failed.stderr
    assert f"error: functions/{js}/index.js:{broken_line}:16: " in failed.stderr, failed.stderr
    assert "SyntaxError" in failed.stderr
    assert ok(cli(project, server, "invoke", js, "-d", "world")) == "hello s3cret world!"
    source.write_text(good)

    back = ok(cli(project, server, "rollback", js))
    assert "live as version 3" in back
    assert ok(cli(project, server, "invoke", js, "-d", "world")) == "hello s3cret world"
    # A rollback is not what this folder deployed: the next deploy puts the file back.
    third = ok(cli(project, server, "deploy", timeout=DEPLOY_TIMEOUT_S))
    assert re.search(rf"^deployed\s+{js} version 4$", third, re.M), third

    # A redeploy of one file with a flag keeps the env and still sees the secrets.
    ok(cli(project, server, "deploy", js, str(source), "--timeout-ms", "900",
           timeout=DEPLOY_TIMEOUT_S))  # fmt: skip
    record = httpx.get(
        f"{server.url}/functions/v1/functions/{js}", headers=server.service_headers(), timeout=30
    ).json()
    assert record["config"]["timeout_ms"] == 900
    assert record["config"]["env"] == {"GREETING": "hello"}
    assert ok(cli(project, server, "invoke", js, "-d", "x")) == "hello s3cret x!"
    ok(cli(project, server, "secrets", "unset", secret))


def test_unknown_manifest_key_is_an_error_naming_it(tmp_path: Path) -> None:
    ok(cli(tmp_path, None, "init"))
    manifest = tmp_path / "wasmlet.toml"
    manifest.write_text(manifest.read_text().replace("timeout_ms = 5000", "timeout = 5000"))
    nested = tmp_path / "functions" / "hello"
    done = cli(nested, None, "deploy")  # the nearest wasmlet.toml, from a subfolder
    assert done.returncode == ExitCode.USAGE
    line = next(n for n, text in enumerate(manifest.read_text().splitlines(), 1)
                if text.startswith("timeout ="))  # fmt: skip
    assert f"{manifest}:{line}:1: unknown key functions.hello.config.timeout" in done.stderr
    listed = cli(nested, None, "list")  # any command: the server is looked up there too
    assert listed.returncode == ExitCode.USAGE and "unknown key" in listed.stderr
