"""The registry's cache on both backends: served stale within its bound while the
database fails, a read older than a change is not kept, every write is announced."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from tests.support.build import wat
from tests.support.postgres import ADMIN_URL
from wasmlet.appdb.sqlite import SqliteAppDatabase
from wasmlet.errors import DbUnavailable
from wasmlet.registry.models import FunctionRecord
from wasmlet.registry.registry import Miss, OperatorLimits, Registry
from wasmlet.runtime.compiler import ModuleCompiler
from wasmlet.store.base import Row, Store
from wasmlet.store.postgres import PostgresStore
from wasmlet.triggers.database import TriggerInstaller

TTL_S = 1.0
MAX_STALE_S = 60.0


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Setup:
    registry: Registry
    clock: FakeClock
    store: Store
    channel: str


@pytest.fixture
def setup(store: Store, tmp_path: Path) -> Iterator[Setup]:
    store.migrate()
    app_db = SqliteAppDatabase(tmp_path / "app.db")
    clock = FakeClock()
    channel = f"wasmlet_registry_{uuid.uuid4().hex}"  # unique: the test database is shared
    registry = Registry(
        store,
        ModuleCompiler(tmp_path / "modules"),
        TriggerInstaller(app_db),
        OperatorLimits(max_timeout_ms=60_000, max_memory_mb=512, global_concurrency=100),
        clock=clock,
        cache_ttl_s=TTL_S,
        max_stale_s=MAX_STALE_S,
        changes_channel=channel,
    )
    yield Setup(registry, clock, store, channel)
    app_db.close()


def cut(monkeypatch: pytest.MonkeyPatch, store: Store) -> None:
    def unavailable(query: str, /, **params: Any) -> Row | None:
        raise DbUnavailable("Database unavailable: connection refused")

    monkeypatch.setattr(store, "fetch_one", unavailable)


def test_entries_are_served_stale_within_the_bound_while_the_database_fails(
    setup: Setup, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry, clock = setup.registry, setup.clock
    registry.deploy("f", wat("hello"))
    assert registry.find("f") is not None
    assert registry.find("gone") is None
    cut(monkeypatch, setup.store)
    clock.now += TTL_S * 2
    assert registry.cached("f") is Miss.MISS  # too old to serve while the database works
    found = registry.find("f")
    assert found is not None and found.name == "f"
    assert registry.cached("f") == found  # the database failed: no read for a while
    assert registry.find("gone") is None
    with pytest.raises(DbUnavailable):
        registry.find("never-seen")
    with pytest.raises(DbUnavailable):
        registry.find("f", cached=False)  # writes and management reads never see stale data
    clock.now += MAX_STALE_S
    with pytest.raises(DbUnavailable):
        registry.find("f")
    monkeypatch.undo()
    assert registry.find("f") is not None


def test_a_read_that_began_before_a_change_is_not_kept(
    setup: Setup, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry, store = setup.registry, setup.store
    registry.deploy("f", wat("hello"))
    real = store.fetch_one

    def changed_meanwhile(query: str, /, **params: Any) -> Row | None:
        row = real(query, **params)
        registry.forget("f")  # an announcement arrives while the read is in flight
        return row

    monkeypatch.setattr(store, "fetch_one", changed_meanwhile)
    setup.clock.now += TTL_S * 2
    assert registry.find("f") is not None
    assert registry.cached("f") is Miss.MISS


def test_concurrent_lookups_of_a_miss_share_one_read(
    setup: Setup, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry, store = setup.registry, setup.store
    registry.deploy("f", wat("hello"))
    setup.clock.now += TTL_S * 2
    real = store.fetch_one
    reads: list[str] = []

    def counted(query: str, /, **params: Any) -> Row | None:
        reads.append(query)
        return real(query, **params)

    monkeypatch.setattr(store, "fetch_one", counted)

    async def burst() -> list[FunctionRecord | None]:
        return await asyncio.gather(*(registry.lookup("f") for _ in range(50)))

    found = asyncio.run(burst())
    assert reads == ["get_function"]
    assert all(record is not None and record.name == "f" for record in found)


@pytest.mark.postgres
def test_every_write_is_announced_when_it_commits(setup: Setup) -> None:
    if not isinstance(setup.store, PostgresStore):
        pytest.skip("announcements are PostgreSQL's NOTIFY")
    registry = setup.registry
    with psycopg.connect(ADMIN_URL, autocommit=True) as listener:
        listener.execute(sql.SQL("LISTEN {}").format(sql.Identifier(setup.channel)))
        registry.deploy("f", wat("hello"))
        registry.deploy("f", wat("echo"))
        registry.update("f", {"timeout_ms": 500})
        registry.delete("f")
        heard = [n.payload for n in listener.notifies(timeout=10, stop_after=4)]
    assert heard == ["f", "f", "f", "f"]
