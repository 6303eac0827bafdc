"""A deploy whose triggers cannot be installed changes nothing (both backends, real databases).

The capture triggers live in the application database and the version in the platform
store, so a deploy is two transactions: a failure in either leaves the previous version
serving with exactly its triggers (and its schedules), and nothing of the new one.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.build import wat
from tests.support.postgres import fresh_database
from wasmlet.appdb.base import AppDatabase, TableRef
from wasmlet.appdb.postgres import PostgresAppDatabase
from wasmlet.appdb.sqlite import SqliteAppDatabase
from wasmlet.errors import FunctionNotFound
from wasmlet.registry.registry import OperatorLimits, Registry
from wasmlet.runtime.compiler import ModuleCompiler
from wasmlet.store.base import Store
from wasmlet.store.postgres import PostgresStore
from wasmlet.store.sqlite import SqliteStore
from wasmlet.triggers.database import TriggerInstaller
from wasmlet.triggers.schedules import ScheduleBook

V1_TRIGGERS = [{"type": "database", "table": "users", "events": ["INSERT"]}]
V2_TRIGGERS = [
    {"type": "database", "table": "users", "events": ["INSERT", "UPDATE", "DELETE"]},
    {"type": "schedule", "cron": "*/5 * * * *"},
    {"type": "database", "table": "orders", "events": ["INSERT"]},
]


class InjectedFault(RuntimeError):
    pass


@dataclass
class Deployer:
    registry: Registry
    store: Store
    app_db: AppDatabase

    def sql(self, text: str) -> dict[str, Any]:
        result: dict[str, Any] = json.loads(
            self.app_db.query(text, [], time.monotonic() + 10, 1024 * 1024)
        )
        return result

    def schedules(self, name: str) -> list[dict[str, Any]]:
        return self.store.fetch_all("function_schedules", function_name=name)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def deployer(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Deployer]:
    with _databases(request.param, tmp_path) as (store, app_db):
        store.migrate()
        registry = Registry(
            store,
            ModuleCompiler(tmp_path / "modules"),
            TriggerInstaller(app_db, ScheduleBook(store, clock=time.time)),
            OperatorLimits(max_timeout_ms=60_000, max_memory_mb=512, global_concurrency=100),
            clock=time.time,
        )
        found = Deployer(registry, store, app_db)
        found.sql("CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT)")
        found.sql("CREATE TABLE orders (id INTEGER PRIMARY KEY)")
        yield found


@pytest.fixture
def fail_on_orders(deployer: Deployer, monkeypatch: pytest.MonkeyPatch) -> None:
    """Creating a capture trigger on `orders` fails, inside the backend's transaction."""
    db = deployer.app_db
    hook = "_create_triggers" if db.dialect == "sqlite" else "_create_trigger"
    real = getattr(db, hook)

    def create(*args: Any) -> None:
        if any(isinstance(arg, TableRef) and arg.table == "orders" for arg in args):
            raise InjectedFault("orders cannot take a trigger")
        real(*args)

    monkeypatch.setattr(db, hook, create)


def test_a_failed_trigger_install_keeps_the_previous_version_and_its_triggers(
    deployer: Deployer, fail_on_orders: None
) -> None:
    v1, _ = deployer.registry.deploy("f", wat("hello"), None, V1_TRIGGERS)
    installed = deployer.app_db.trigger_names()
    assert len(installed) == 1

    with pytest.raises(InjectedFault):
        deployer.registry.deploy("f", wat("echo"), None, V2_TRIGGERS)

    current = deployer.registry.get("f", cached=False)
    assert (current.version, current.module_key) == (v1.version, v1.module_key)
    assert [t["table"].rsplit(".", 1)[1] for t in current.triggers] == ["users"]
    assert deployer.app_db.trigger_names() == installed  # not the users UPDATE/DELETE ones
    assert deployer.schedules("f") == []
    # ...and the old trigger still captures: one event for the insert, none for the update.
    deployer.sql("INSERT INTO users (id, email) VALUES (1, 'a@b')")
    deployer.sql("UPDATE users SET email = 'c@d' WHERE id = 1")
    deployer.sql("INSERT INTO orders (id) VALUES (1)")
    events = deployer.app_db.fetch_outbox(10)
    assert [(e.function_name, e.op, e.table_name) for e in events] == [("f", "INSERT", "users")]


def test_a_failed_first_deploy_leaves_no_function_and_no_trigger(
    deployer: Deployer, fail_on_orders: None
) -> None:
    with pytest.raises(InjectedFault):
        deployer.registry.deploy("g", wat("hello"), None, V2_TRIGGERS)
    with pytest.raises(FunctionNotFound):
        deployer.registry.get("g", cached=False)
    assert deployer.app_db.trigger_names() == []
    assert deployer.schedules("g") == []


def test_a_failed_version_write_puts_the_previous_triggers_back(
    deployer: Deployer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The triggers went in, then the platform store refused the version: undone."""
    v1, _ = deployer.registry.deploy("f", wat("hello"), None, V1_TRIGGERS)
    installed = deployer.app_db.trigger_names()
    store = deployer.store
    real_execute = store.execute

    def execute(query: str, /, **params: Any) -> int:
        if query == "insert_version":
            raise InjectedFault("the platform store went away")
        return real_execute(query, **params)

    monkeypatch.setattr(store, "execute", execute)
    with pytest.raises(InjectedFault):
        deployer.registry.deploy("f", wat("echo"), None, V2_TRIGGERS[:2])
    monkeypatch.undo()

    current = deployer.registry.get("f", cached=False)
    assert (current.version, current.module_key) == (v1.version, v1.module_key)
    assert deployer.app_db.trigger_names() == installed
    assert deployer.schedules("f") == []
    # Same trigger names on PostgreSQL (one trigger per table): tell them by what they capture.
    deployer.sql("INSERT INTO users (id, email) VALUES (2, 'e@f')")
    deployer.sql("UPDATE users SET email = 'x' WHERE id = 2")
    deployer.sql("DELETE FROM users WHERE id = 2")
    assert [e.op for e in deployer.app_db.fetch_outbox(10)] == ["INSERT"]


@contextmanager
def _databases(backend: str, tmp_path: Path) -> Iterator[tuple[Store, AppDatabase]]:
    if backend == "sqlite":
        with SqliteStore(tmp_path / "platform.db") as store:
            app_db = SqliteAppDatabase(tmp_path / "app.db")
            try:
                yield store, app_db
            finally:
                app_db.close()
        return
    with fresh_database() as pg, PostgresStore(pg.url) as pg_store:
        pg_store.migrate()  # the app database's capture function lives in the platform schema
        pg_app = PostgresAppDatabase(pg.url, app_role=pg.role)
        try:
            yield pg_store, pg_app
        finally:
            pg_app.close()


def test_a_failed_delete_keeps_the_function_and_its_triggers(
    deployer: Deployer, monkeypatch: pytest.MonkeyPatch
) -> None:
    deployer.registry.deploy("f", wat("hello"), None, [*V1_TRIGGERS, V2_TRIGGERS[1]])
    installed = deployer.app_db.trigger_names()
    store = deployer.store
    real_execute = store.execute

    def execute(query: str, /, **params: Any) -> int:
        if query == "delete_function":
            raise InjectedFault("the platform store went away")
        return real_execute(query, **params)

    monkeypatch.setattr(store, "execute", execute)
    with pytest.raises(InjectedFault):
        deployer.registry.delete("f")
    monkeypatch.undo()

    assert deployer.registry.get("f", cached=False).version == 1
    assert deployer.app_db.trigger_names() == installed
    assert len(deployer.schedules("f")) == 1
    deployer.sql("INSERT INTO users (id, email) VALUES (3, 'g@h')")
    assert [e.op for e in deployer.app_db.fetch_outbox(10)] == ["INSERT"]
    deployer.registry.delete("f")  # and once the store is back, it goes, triggers and all
    assert deployer.app_db.trigger_names() == []
    assert deployer.schedules("f") == []
