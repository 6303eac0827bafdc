"""`wasmlet versions` and `wasmlet rollback` against a real server, and `logs --since`
with a relative time."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path

from tests.cli.test_cli import run_cli
from tests.support.appdb import wait_until
from tests.support.build import wat
from tests.support.server import ServerProcess
from tests.support.wasmgen import says
from wasmlet.cli.exit_codes import ExitCode

LOG_LINES = wat((Path(__file__).parent.parent / "fixtures" / "log_lines.wat").read_text())
LOCAL_ISO = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d")


def _deploy(server: ServerProcess, tmp_path: Path, name: str, text: str) -> None:
    path = tmp_path / f"{text.replace(' ', '_')}.wasm"
    path.write_bytes(says(text))
    done = run_cli(server, "deploy", name, str(path), "--public")
    assert done.returncode == 0, done.stderr.decode()


def test_versions_and_rollback_commands(server: ServerProcess, fname: str, tmp_path: Path) -> None:
    for n in (1, 2, 3):
        _deploy(server, tmp_path, fname, f"body {n}")
    listed = run_cli(server, "versions", fname)
    assert listed.returncode == 0, listed.stderr.decode()
    lines = listed.stdout.decode().splitlines()
    assert "live version 3" in lines[0]
    header = lines[1].split()
    assert header[:4] == ["VERSION", "LIVE", "CREATED", "(LOCAL)"]
    assert {"RUNTIME", "SIZE", "SHA256"} <= set(header)
    rows = [line.split() for line in lines[2:]]
    assert [row[0] for row in rows] == ["3", "2", "1"]
    assert rows[0][1] == "*" and rows[1][1] != "*"
    assert LOCAL_ISO.fullmatch(rows[0][2]), rows[0]
    offset = datetime.now().astimezone().isoformat()[-6:]
    assert rows[0][2].endswith(offset)  # local time, with the local offset

    back = run_cli(server, "rollback", fname)
    assert back.returncode == 0, back.stderr.decode()
    assert "live as version 4" in back.stdout.decode()
    assert server.invoke(fname).text == "body 2"
    to_first = run_cli(server, "rollback", fname, "--to", "1")
    assert to_first.returncode == 0, to_first.stderr.decode()
    assert "live as version 5" in to_first.stdout.decode()
    assert server.invoke(fname).text == "body 1"
    page = run_cli(server, "versions", fname, "--limit", "2").stdout.decode().splitlines()
    assert [line.split()[0] for line in page[2:]] == ["5", "4"]
    assert "rollback to v1" in page[2]

    [row] = [line for line in run_cli(server, "list").stdout.decode().splitlines() if fname in line]
    assert LOCAL_ISO.fullmatch(row.split()[-1]), row  # `list` shows when, in local time

    missing = run_cli(server, "rollback", fname, "--to", "99")
    assert missing.returncode == ExitCode.NOT_FOUND
    assert "not_found" in missing.stderr.decode()
    unknown = run_cli(server, "versions", fname + "-none")
    assert unknown.returncode == ExitCode.NOT_FOUND


def test_logs_since_takes_relative_times_and_refuses_garbage(
    server: ServerProcess, fname: str
) -> None:
    server.deploy(fname, LOG_LINES)
    assert server.invoke(fname, b"hello there").status_code == 200
    wait_until(lambda: bool(_lines(server, fname, "--since", "1d")), 10, "log lines")
    for since in ("5m", "2h", "1d", "90s", "5 minutes ago"):
        printed = _lines(server, fname, "--since", since, "--until", "now")
        assert printed, since
        assert LOCAL_ISO.fullmatch(printed[0].split()[0]), printed[0]  # local ISO 8601
    assert _lines(server, fname, "--until", "1h") == []  # all newer than an hour ago
    assert _lines(server, fname, "--since", "0") != []  # epoch seconds still work
    garbage = run_cli(server, "logs", fname, "--since", "yesterday-ish")
    assert garbage.returncode == ExitCode.USAGE
    message = garbage.stderr.decode()
    assert "--since" in message and "5m" in message and "ISO 8601" in message


def _lines(server: ServerProcess, name: str, *args: str) -> list[str]:
    done = run_cli(server, "logs", name, *args)
    assert done.returncode == 0, done.stderr.decode()
    return done.stdout.decode().splitlines()
