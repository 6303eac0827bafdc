"""Versions stored before migration 0011 on both backends: the upgrade backfills what it
can (the live version's triggers, every version's size), and a rollback to a version
with no triggers recorded keeps the function's current ones."""

from __future__ import annotations

import json
from pathlib import Path

from tests.support.wasmgen import says
from wasmlet.appdb.sqlite import SqliteAppDatabase
from wasmlet.registry.registry import OperatorLimits, Registry
from wasmlet.runtime.compiler import ModuleCompiler, content_key
from wasmlet.store.base import Store
from wasmlet.store.queries import Migration, load_migrations
from wasmlet.triggers.database import TriggerInstaller

HTTP_ONLY = json.dumps([{"type": "http"}])
BEFORE_HISTORY = 10
SEED = 9999  # a schema_migrations row of the test's own, never a real migration


def _old_schema_with_two_versions(store: Store) -> tuple[bytes, bytes]:
    assert store.applied_migrations() == set()  # (creates schema_migrations)
    for migration in load_migrations(store.dialect)[:BEFORE_HISTORY]:
        store._apply(migration)  # the schema as a release before 0011 left it
    first, second = says("old 1"), says("old 2")
    with store.transaction():
        for wasm in (first, second):
            store.execute("put_module", key=content_key(wasm), wasm=wasm, now=1.0)
        store.execute(
            "insert_function", name="f", enabled=True, config="{}", triggers=HTTP_ONLY, now=1.0
        )
        store.execute("bump_function_version", name="f", config="{}", triggers=HTTP_ONLY, now=2.0)
    rows = ", ".join(
        f"('f', {version}, '{content_key(wasm)}', '{{}}', {float(version)})"
        for version, wasm in ((1, first), (2, second))
    )
    # The old insert_version (no triggers, runtime, size), run as a one-off script.
    store._apply(
        Migration(
            SEED,
            "seed",
            "INSERT INTO function_versions (name, version, module_key, config, created_at) "
            f"VALUES {rows};",
        )
    )
    return first, second


def test_upgrade_backfills_and_rollback_to_an_old_version(store: Store, tmp_path: Path) -> None:
    first, second = _old_schema_with_two_versions(store)
    assert store.migrate() == [BEFORE_HISTORY + 1]
    live = store.fetch_one("get_version", name="f", version=2)
    old = store.fetch_one("get_version", name="f", version=1)
    assert live is not None and old is not None
    assert json.loads(live["triggers"]) == [{"type": "http"}] and old["triggers"] is None
    assert (int(live["size"]), int(old["size"])) == (len(second), len(first))

    registry = Registry(
        store,
        ModuleCompiler(tmp_path / "modules"),
        TriggerInstaller(SqliteAppDatabase(tmp_path / "app.db")),
        OperatorLimits(max_timeout_ms=60_000, max_memory_mb=512, global_concurrency=100),
        clock=lambda: 10.0,
    )
    _, listed = registry.versions("f", limit=10)
    assert [v.version for v in listed] == [2, 1] and listed[0].runtime is None
    back = registry.rollback("f", 1)
    assert back.version == 3 and back.module_key == content_key(first)
    assert back.triggers == [{"type": "http"}]
    _, listed = registry.versions("f", limit=10)
    assert (listed[0].runtime, listed[0].rolled_back_from) == ("wasm", 1)
