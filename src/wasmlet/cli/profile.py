"""Where the CLI finds its server and key: flags, then the environment
(`WASMLET_URL`, `WASMLET_SERVICE_KEY`, or the older `WASMLET_KEY`), then the `[server]`
table of the nearest `wasmlet.toml` (its url; its key from the environment variable
`key_env` names or from the keys.json of the server data dir `data_dir` names, given to
that url only), then the profile that `wasmlet login URL --key KEY` writes
(`$XDG_CONFIG_HOME/wasmlet/profile.json`, else `~/.config/wasmlet/profile.json`, mode
0600), then the service key in a server's data dir.
A client command only reads: it never creates keys."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

DEFAULT_URL = "http://127.0.0.1:8787"
PROFILE_NAME = "profile.json"
MAX_PROFILE_BYTES = 64 * 1024


class ProfileError(Exception):
    """The profile file exists but cannot be used (named in the message)."""


def config_dir(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    base = env.get("XDG_CONFIG_HOME", "")
    root = Path(base) if base and Path(base).is_absolute() else Path.home() / ".config"
    return root / "wasmlet"


def profile_path(env: Mapping[str, str] | None = None) -> Path:
    return config_dir(env) / PROFILE_NAME


@dataclass(frozen=True, slots=True)
class Profile:
    url: str
    key: str


def read_profile(path: Path) -> Profile | None:
    if not path.is_file():
        return None
    try:
        with path.open("rb") as handle:
            data = json.loads(handle.read(MAX_PROFILE_BYTES + 1)[:MAX_PROFILE_BYTES])
    except (OSError, ValueError) as exc:
        raise ProfileError(f"profile {path} is unreadable: {exc}") from exc
    if (
        not isinstance(data, dict)
        or not isinstance(data.get("url"), str)
        or not isinstance(data.get("service_key"), str)
    ):
        raise ProfileError(f"profile {path} needs string fields url and service_key")
    return Profile(data["url"], data["service_key"])


def write_profile(path: Path, url: str, key: str) -> None:
    """Written owner-only (0600, its directory 0700) and replaced atomically."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, (json.dumps({"url": url, "service_key": key}, indent=2) + "\n").encode())
    finally:
        os.close(fd)
    os.replace(temporary, path)


@dataclass(frozen=True, slots=True)
class ManifestServer:
    """A manifest's `[server]` table, its paths made absolute."""

    manifest: Path
    url: str | None
    key_env: str | None
    data_dir: Path | None


def _keys_file_key(keys: Path) -> str | None:
    if not keys.is_file():
        return None
    try:
        stored = json.loads(keys.read_text("utf-8")).get("service_key")
    except (OSError, ValueError, AttributeError):
        return None
    return stored if isinstance(stored, str) else None


@dataclass(frozen=True, slots=True)
class Target:
    url: str
    key: str | None
    key_source: str  # "the --key flag", "$WASMLET_SERVICE_KEY", "profile PATH", ...


def resolve(
    url_flag: str | None,
    key_flag: str | None,
    data_dir: str,
    env: Mapping[str, str] | None = None,
    manifest: ManifestServer | None = None,
) -> Target:
    """The server and key a client command uses, and where the key came from."""
    env = os.environ if env is None else env
    path = profile_path(env)
    profile = read_profile(path)
    url = (
        url_flag
        or env.get("WASMLET_URL")
        or (manifest.url if manifest else None)
        or (profile.url if profile else DEFAULT_URL)
    )
    if key_flag:
        return Target(url, key_flag, "the --key flag")
    for name in ("WASMLET_SERVICE_KEY", "WASMLET_KEY"):
        if env.get(name):
            return Target(url, env[name], f"${name}")
    if manifest is not None and _same(manifest.url or url, url):
        if manifest.key_env and env.get(manifest.key_env):
            return Target(url, env[manifest.key_env],
                          f"${manifest.key_env} (key_env of {manifest.manifest})")  # fmt: skip
        if manifest.data_dir is not None:
            keys = manifest.data_dir / "keys.json"
            stored = _keys_file_key(keys)
            if stored is not None:
                return Target(url, stored, f"the data dir {keys} (data_dir of {manifest.manifest})")
    if profile is not None and _same(profile.url, url):
        return Target(url, profile.key, f"the profile {path} (wasmlet login)")
    keys = Path(data_dir) / "keys.json"
    stored = _keys_file_key(keys)
    if stored is not None:
        return Target(url, stored, f"the data dir {keys.resolve()}")
    return Target(url, None, "nowhere (no --key, no $WASMLET_SERVICE_KEY, no profile for "
                  f"{url}, no {keys.resolve()})")  # fmt: skip


def _same(a: str, b: str) -> bool:
    return a.rstrip("/") == b.rstrip("/")
