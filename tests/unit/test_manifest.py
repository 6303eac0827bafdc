"""wasmlet.toml parsing (cli/manifest.py): strict models, errors with the key's path,
line and column; and the scaffolded manifest parses."""

from __future__ import annotations

from pathlib import Path

import pytest

from wasmlet.cli.manifest import ManifestError, find_manifest, load_project
from wasmlet.cli.scaffold import add_function, init_project

GOOD = """\
[server]
url = "http://127.0.0.1:9999"
key_env = "MY_KEY"

[functions.hello]
source = "hello.js"
env = { A = "1" }
secrets = ["TOKEN"]

[functions.hello.config]
timeout_ms = 900

[[functions.hello.triggers]]
type = "http"

[[functions.hello.triggers]]
type = "schedule"
cron = "*/5 * * * *"
timezone = "Europe/Paris"
catch_up = "all"

[[functions.hello.triggers]]
type = "database"
table = "orders"
events = ["INSERT"]
"""


def _load(tmp_path: Path, text: str) -> ManifestError:
    path = tmp_path / "wasmlet.toml"
    path.write_text(text)
    with pytest.raises(ManifestError) as caught:
        load_project(path)
    return caught.value


def test_a_good_manifest(tmp_path: Path) -> None:
    (tmp_path / "wasmlet.toml").write_text(GOOD)
    project = load_project(tmp_path / "wasmlet.toml")
    spec = project.manifest.functions["hello"]
    assert spec.deploy_config() == {"timeout_ms": 900, "env": {"A": "1"}, "allowed_hosts": []}
    assert [t["type"] for t in spec.deploy_triggers()] == ["http", "schedule", "database"]
    assert spec.deploy_triggers()[1] == {
        "type": "schedule", "cron": "*/5 * * * *", "timezone": "Europe/Paris", "catch_up": "all",
    }  # fmt: skip
    nested = tmp_path / "a" / "b"
    nested.mkdir(parents=True)
    assert find_manifest(nested) == tmp_path / "wasmlet.toml"


@pytest.mark.parametrize(
    ("change", "message", "line"),
    [
        (("timeout_ms = 900", "timeout_mss = 900"), "unknown key F.config.timeout_mss", 11),
        (('catch_up = "all"', 'catchup = "all"'), "unknown key F.triggers[1].catchup", 20),
        (('secrets = ["TOKEN"]', 'secret = ["TOKEN"]'), "unknown key F.secret", 8),
        (('key_env = "MY_KEY"', 'key = "sk_123"'), "unknown key server.key (no key belongs", 3),
        (("timeout_ms = 900", 'timeout_ms = "900"'), "F.config.timeout_ms", 11),
        (('events = ["INSERT"]', 'events = ["TRUNCATE"]'), "F.triggers[2].events[0]", 25),
        (('source = "hello.js"', 'source = "hello.py"'), "F.source", 6),
    ],
)  # fmt: skip
def test_bad_keys_and_values_are_named_with_their_line(
    tmp_path: Path, change: tuple[str, str], message: str, line: int
) -> None:
    error = _load(tmp_path, GOOD.replace(*change))
    assert message.replace("F.", "functions.hello.") in str(error)
    assert error.line == line, str(error)
    assert str(error).startswith(f"{tmp_path / 'wasmlet.toml'}:{line}:")


def test_toml_syntax_error_has_line_and_column(tmp_path: Path) -> None:
    error = _load(tmp_path, GOOD + "\nbroken = \n")
    assert (error.line, error.column) == (27, 10)


def test_reserved_or_bad_function_names(tmp_path: Path) -> None:
    error = _load(tmp_path, GOOD.replace("functions.hello", "functions.Hello"))
    assert "Hello" in str(error)


def test_scaffold_writes_a_manifest_that_parses(tmp_path: Path) -> None:
    init_project(tmp_path, "hello", "js")
    add_function(tmp_path, "greet", "ts")
    add_function(tmp_path, "native", "c")
    project = load_project(tmp_path / "wasmlet.toml")
    assert list(project.manifest.functions) == ["hello", "greet", "native"]
    native = project.manifest.functions["native"]
    assert native.build is not None and "ziglang cc -target wasm32-wasi" in native.build
    assert (tmp_path / "functions" / "greet" / "index.ts").is_file()
    assert project.manifest.server.data_dir == ".wasmlet/dev"


def test_the_manifest_is_a_step_of_the_server_lookup(tmp_path: Path) -> None:
    import json

    from wasmlet.cli.profile import ManifestServer, profile_path, resolve, write_profile

    env = {"XDG_CONFIG_HOME": str(tmp_path / "config")}
    write_profile(profile_path(env), "http://127.0.0.1:9999", "sk_profile")
    data = tmp_path / "data"
    data.mkdir()
    (data / "keys.json").write_text(json.dumps({"service_key": "sk_manifest_dir"}))
    manifest = ManifestServer(tmp_path / "wasmlet.toml", "http://127.0.0.1:7000", "MY_KEY", data)
    found = resolve(None, None, ".wasmlet", env, manifest)
    assert (found.url, found.key) == ("http://127.0.0.1:7000", "sk_manifest_dir")
    assert "data_dir of" in found.key_source and str(data) in found.key_source
    named = resolve(None, None, ".wasmlet", {**env, "MY_KEY": "sk_named"}, manifest)
    assert named.key == "sk_named" and "$MY_KEY (key_env of" in named.key_source
    env_first = resolve(None, None, ".wasmlet",
                        {**env, "WASMLET_URL": "http://e:1", "WASMLET_SERVICE_KEY": "sk_env"},
                        manifest)  # fmt: skip
    assert (env_first.url, env_first.key) == ("http://e:1", "sk_env")
    other = resolve("http://127.0.0.1:9999", None, ".wasmlet", env, manifest)
    assert other.key == "sk_profile"  # the manifest's key goes only to its own url
