"""Secrets on both store backends: sealed at rest, listed without values, validated."""

from __future__ import annotations

import asyncio
import base64
import os
import stat
from pathlib import Path

import pytest

from wasmlet.errors import DbUnavailable, InvalidConfig, NotFound
from wasmlet.secrets.box import SecretBox, SecretKeyError, UndecryptableSecret, load_key
from wasmlet.secrets.service import Secrets
from wasmlet.store.base import Store
from wasmlet.store.sqlite import SqliteStore

VALUE = "s3cr3t-value-7f2a91c4"


def test_set_list_unset_and_the_values_are_sealed(store: Store) -> None:
    store.migrate()
    seen: list[str] = []
    secrets = Secrets(store, SecretBox(os.urandom(32)), on_values=lambda *v: seen.extend(v))
    listed = secrets.put([{"name": "API_TOKEN", "value": VALUE}, {"name": "B", "value": ""}])
    assert [s["name"] for s in listed] == ["API_TOKEN", "B"]
    assert VALUE not in repr(listed) and VALUE in seen
    assert dict(secrets.environment()) == {"API_TOKEN": VALUE, "B": ""}
    (row,) = [r for r in store.fetch_all("sealed_secrets") if r["name"] == "API_TOKEN"]
    assert VALUE.encode() not in bytes(row["sealed"])
    # Setting it again replaces it and changes the digest; another key cannot open it.
    again = secrets.put([{"name": "API_TOKEN", "value": VALUE + "x"}])
    assert again[0]["digest"] != listed[0]["digest"]
    with pytest.raises(UndecryptableSecret):
        Secrets(store, SecretBox(os.urandom(32))).environment()
    secrets.delete("B")
    assert [s["name"] for s in secrets.listing()] == ["API_TOKEN"]
    with pytest.raises(NotFound):
        secrets.delete("B")


@pytest.mark.parametrize(
    "items",
    [
        [],
        {"name": "A", "value": "v"},
        [{"name": "1A", "value": "v"}],
        [{"name": "WASMLET_X", "value": "v"}],
        [{"name": "A", "value": 1}],
        [{"name": "A", "value": "a\0b"}],
        [{"name": "A", "value": "v", "extra": 1}],
        [{"name": f"N{i}", "value": "v"} for i in range(129)],
        [{"name": "BIG", "value": "x" * 70_000}],
    ],
)
def test_invalid_secrets_are_refused_without_quoting_values(store: Store, items: object) -> None:
    store.migrate()
    secrets = Secrets(store, SecretBox(os.urandom(32)))
    with pytest.raises(InvalidConfig) as refused:
        secrets.put(items)
    assert "a\0b" not in refused.value.message and "x" * 100 not in refused.value.message
    assert secrets.listing() == []


def test_the_key_is_generated_once_with_mode_0600(tmp_path: Path) -> None:
    path = tmp_path / "secrets.key"
    key = load_key(None, path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_key(None, path) == key
    configured = base64.b64encode(os.urandom(32)).decode()
    assert load_key(configured, tmp_path / "unused.key") == base64.b64decode(configured)
    assert not (tmp_path / "unused.key").exists()
    with pytest.raises(SecretKeyError):
        load_key("too-short", path)


class _FlakyStore:
    """A store whose reads of the secrets fail while `down` (unit test of Secrets only)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.down = False

    def __getattr__(self, name: str) -> object:
        return getattr(self.store, name)

    def fetch_all(self, query: str, /, **params: object) -> list[dict[str, object]]:
        if self.down:
            raise DbUnavailable("Database unavailable: test")
        return self.store.fetch_all(query, **params)


def test_while_the_database_is_away_the_last_values_are_served(tmp_path: Path) -> None:
    now = [0.0]
    with SqliteStore(tmp_path / "platform.db") as sqlite_store:
        sqlite_store.migrate()
        flaky = _FlakyStore(sqlite_store)
        secrets = Secrets(flaky, SecretBox(os.urandom(32)), clock=lambda: now[0])  # type: ignore[arg-type]
        with pytest.raises(DbUnavailable):
            flaky.down = True
            asyncio.run(secrets.current())
        flaky.down = False
        secrets.put([{"name": "A", "value": VALUE}])
        assert asyncio.run(secrets.current()) == {"A": VALUE}
        flaky.down = True
        now[0] += 10
        assert secrets.cached() is None
        assert asyncio.run(secrets.current()) == {"A": VALUE}
