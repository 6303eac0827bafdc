"""`wasmlet serve` with bad settings: exit status 2 and one readable line per problem."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from wasmlet.cli.exit_codes import ExitCode

FORBIDDEN = ('File "', "Traceback", "{'type'", "pydantic", "errors.pydantic.dev")


def serve(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("WASMLET_")}
    return subprocess.run(
        [sys.executable, "-m", "wasmlet", "serve", "--data-dir", str(tmp_path / "data"), *args],
        capture_output=True,
        text=True,
        env={**environ, **env},
        timeout=60,
        check=False,
    )


def lines_of(done: subprocess.CompletedProcess[str]) -> list[str]:
    assert done.returncode == ExitCode.USAGE, done.stderr
    assert int(ExitCode.USAGE) == 2
    assert done.stdout == ""
    for marker in FORBIDDEN:
        assert marker not in done.stderr
    return done.stderr.splitlines()


def test_unknown_key_in_the_settings_file(tmp_path: Path) -> None:
    file = tmp_path / "wasmlet.toml"
    file.write_text('prot = 9000\nhost = "127.0.0.1"\n')
    assert lines_of(serve(tmp_path, "--config", str(file))) == [
        f"error: settings file {file}: prot is not a known setting (did you mean port?)"
    ]


def test_wrong_types_in_the_settings_file_one_line_each(tmp_path: Path) -> None:
    file = tmp_path / "wasmlet.toml"
    file.write_text('port = "eighty"\nworkers = 0\nhistory = "maybe"\n')
    assert lines_of(serve(tmp_path, "--config", str(file))) == [
        f"error: settings file {file}: port must be an integer",
        f"error: settings file {file}: workers must be at least 1",
        f"error: settings file {file}: history must be true or false",
    ]


def test_flags_and_environment_are_named_as_written(tmp_path: Path) -> None:
    done = serve(tmp_path, "--port", "70000", WASMLET_GLOBAL_CONCURRENCY="lots")
    assert lines_of(done) == [
        "error: --port must be at most 65535",
        "error: WASMLET_GLOBAL_CONCURRENCY must be an integer",
    ]


def test_missing_or_broken_settings_file(tmp_path: Path) -> None:
    missing = tmp_path / "absent.toml"
    assert lines_of(serve(tmp_path, "--config", str(missing))) == [
        f"error: settings file {missing} does not exist"
    ]
    broken = tmp_path / "broken.toml"
    broken.write_text("port = [\n")
    (line,) = lines_of(serve(tmp_path, "--config", str(broken)))
    assert line.startswith(f"error: settings file {broken}: ")


def test_settings_that_disagree(tmp_path: Path) -> None:
    done = serve(tmp_path, WASMLET_DEFAULT_TIMEOUT_MS="999999")
    assert lines_of(done) == ["error: default_timeout_ms is over max_timeout_ms"]
