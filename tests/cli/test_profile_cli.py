"""Where the CLI finds its server and key (cli/profile.py): flags, environment, the
`wasmlet login` profile, a data dir; never new keys in the current directory; a 401 says
where the key came from. Over a real server, from another directory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.support.server import ServerProcess
from wasmlet.cli.exit_codes import ExitCode
from wasmlet.cli.profile import DEFAULT_URL, profile_path, resolve, write_profile


def _clean_env(config_home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WASMLET_")}
    return {**env, "XDG_CONFIG_HOME": str(config_home), **extra}


def _cli(cwd: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "wasmlet", *args],
        cwd=cwd, env=env, capture_output=True, timeout=60, check=False,
    )  # fmt: skip


def test_resolution_order(tmp_path: Path) -> None:
    home = tmp_path / "config"
    env = {"XDG_CONFIG_HOME": str(home)}
    data = tmp_path / "data"
    data.mkdir()
    (data / "keys.json").write_text(json.dumps({"service_key": "sk_data"}))
    nothing = resolve(None, None, str(tmp_path / "none"), env)
    assert (nothing.url, nothing.key) == (DEFAULT_URL, None)
    assert "nowhere" in nothing.key_source
    from_data = resolve(None, None, str(data), env)
    assert from_data.key == "sk_data" and "data dir" in from_data.key_source

    write_profile(profile_path(env), "http://127.0.0.1:9999", "sk_profile")
    assert profile_path(env) == home / "wasmlet" / "profile.json"
    assert profile_path(env).stat().st_mode & 0o777 == 0o600
    assert (home / "wasmlet").stat().st_mode & 0o077 == 0
    profiled = resolve(None, None, str(data), env)
    assert (profiled.url, profiled.key) == ("http://127.0.0.1:9999", "sk_profile")
    assert str(profile_path(env)) in profiled.key_source
    other_server = resolve("http://127.0.0.1:1", None, str(data), env)
    assert other_server.key == "sk_data"  # a profile's key goes only to its own server

    with_env = resolve(None, None, str(data), {**env, "WASMLET_URL": "http://e:1",
                                               "WASMLET_SERVICE_KEY": "sk_env"})  # fmt: skip
    assert (with_env.url, with_env.key, with_env.key_source) == (
        "http://e:1", "sk_env", "$WASMLET_SERVICE_KEY",
    )  # fmt: skip
    flagged = resolve("http://f:1", "sk_flag", str(data), {**env, "WASMLET_KEY": "sk_old"})
    assert (flagged.url, flagged.key, flagged.key_source) == (
        "http://f:1", "sk_flag", "the --key flag",
    )  # fmt: skip
    relative = resolve(None, None, str(data), {"XDG_CONFIG_HOME": "relative/dir"})
    assert relative.key == "sk_data"  # a relative XDG_CONFIG_HOME is ignored (XDG spec)


def test_login_then_commands_from_another_directory(server: ServerProcess, tmp_path: Path) -> None:
    home, elsewhere = tmp_path / "config", tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = _clean_env(home)

    refused = _cli(elsewhere, env, "login", server.url, "--key", "sk_wrong")
    assert refused.returncode == ExitCode.UNAUTHORIZED
    assert not (home / "wasmlet" / "profile.json").exists()  # a wrong key is not saved

    done = _cli(elsewhere, env, "login", server.url, "--key", server.service_key)
    assert done.returncode == 0, done.stderr.decode()
    profile = home / "wasmlet" / "profile.json"
    assert profile.stat().st_mode & 0o777 == 0o600
    assert json.loads(profile.read_text()) == {"url": server.url,
                                               "service_key": server.service_key}  # fmt: skip

    listed = _cli(elsewhere, env, "list")
    assert listed.returncode == 0, listed.stderr.decode()
    assert list(elsewhere.iterdir()) == []  # no data dir, no keys created here

    keys = _cli(elsewhere, env, "keys")
    assert keys.returncode == ExitCode.USAGE and "--create" in keys.stderr.decode()
    assert list(elsewhere.iterdir()) == []


def test_a_401_says_where_the_key_came_from(server: ServerProcess, tmp_path: Path) -> None:
    home = tmp_path / "config"
    env = _clean_env(home)
    stale = _cli(tmp_path, env, "login", server.url, "--key", "sk_stale", "--no-check")
    assert stale.returncode == 0, stale.stderr.decode()
    from_profile = _cli(tmp_path, env, "list")
    assert from_profile.returncode == ExitCode.UNAUTHORIZED
    assert f"came from the profile {home / 'wasmlet' / 'profile.json'}" in (
        from_profile.stderr.decode()
    )
    from_env = _cli(tmp_path, {**env, "WASMLET_SERVICE_KEY": "sk_env"}, "list")
    assert "came from $WASMLET_SERVICE_KEY" in from_env.stderr.decode()
    from_flag = _cli(tmp_path, env, "list", "--key", "sk_flag")
    assert "came from the --key flag" in from_flag.stderr.decode()
    data = tmp_path / "data"
    data.mkdir()
    (data / "keys.json").write_text(json.dumps({"service_key": "sk_data"}))
    from_data = _cli(tmp_path, env, "list", "--url", server.url + "/", "--data-dir", str(data))
    assert from_data.returncode == ExitCode.UNAUTHORIZED  # the profile's key, same server
    assert "profile" in from_data.stderr.decode()
    (home / "wasmlet" / "profile.json").unlink()
    only_data = _cli(tmp_path, env, "list", "--url", server.url, "--data-dir", str(data))
    assert f"came from the data dir {data / 'keys.json'}" in only_data.stderr.decode()
