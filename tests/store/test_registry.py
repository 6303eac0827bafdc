"""The registry on both backends: versions, config changes, deletes, refusals."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.build import wat
from wasmlet.appdb.sqlite import SqliteAppDatabase
from wasmlet.errors import FunctionNotFound, InvalidConfig, InvalidWasm
from wasmlet.registry.registry import OperatorLimits, Registry
from wasmlet.runtime.compiler import ModuleCompiler
from wasmlet.store.base import Store
from wasmlet.triggers.database import TriggerInstaller


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def registry(store: Store, tmp_path: Path) -> Iterator[Registry]:
    store.migrate()
    app_db = SqliteAppDatabase(tmp_path / "app.db")
    yield Registry(
        store,
        ModuleCompiler(tmp_path / "modules"),
        TriggerInstaller(app_db),
        OperatorLimits(max_timeout_ms=60_000, max_memory_mb=512, global_concurrency=100),
        clock=FakeClock(),
    )
    app_db.close()


def test_deploy_redeploy_versions(registry: Registry) -> None:
    first, created = registry.deploy("hello", wat("hello"), {"timeout_ms": 100})
    assert created and first.version == 1
    second, created = registry.deploy("hello", wat("echo"))
    assert not created and second.version == 2
    assert second.config.timeout_ms == 100  # kept when a redeploy names no config
    assert second.module_key != first.module_key
    assert [r.name for r in registry.list()] == ["hello"]


def test_refused_deploy_stores_nothing(registry: Registry) -> None:
    with pytest.raises(InvalidWasm):
        registry.deploy("broken", b"\0asm\x01\0\0\0\xff")
    with pytest.raises(InvalidConfig):
        registry.deploy("big", wat("hello"), {"memory_mb": 4096})
    assert registry.list() == []


def test_update_and_delete(registry: Registry) -> None:
    registry.deploy("f", wat("hello"))
    updated = registry.update("f", {"enabled": False, "timeout_ms": 500})
    assert not updated.enabled and updated.config.timeout_ms == 500
    registry.delete("f")
    with pytest.raises(FunctionNotFound):
        registry.get("f")
    with pytest.raises(FunctionNotFound):
        registry.delete("f")


def test_ensure_compiled_rebuilds_a_missing_cache(
    registry: Registry, store: Store, tmp_path: Path
) -> None:
    record, _ = registry.deploy("f", wat("hello"))
    Path(registry.module_path(record)).unlink()
    assert registry.ensure_compiled() == 1
    assert Path(registry.module_path(record)).is_file()
    assert registry.ensure_compiled() == 0
