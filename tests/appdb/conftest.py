"""The application database on both backends, each with a way in "as the app"."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.postgres import fresh_database
from wasmlet.appdb.base import AppDatabase
from wasmlet.appdb.postgres import PostgresAppDatabase
from wasmlet.appdb.sqlite import SqliteAppDatabase
from wasmlet.store.postgres import PostgresStore


@dataclass
class AppDb:
    db: AppDatabase
    app_connect: Callable[[], Any]
    """A DB-API connection as the user's own application would open it."""
    placeholder: str


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def app(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[AppDb]:
    if request.param == "sqlite":
        path = tmp_path / "app.db"
        db = SqliteAppDatabase(path)
        try:
            yield AppDb(db, lambda: sqlite3.connect(path), "?")
        finally:
            db.close()
        return
    with fresh_database() as pg:
        store = PostgresStore(pg.url)
        store.migrate()
        pg_db = PostgresAppDatabase(pg.url, app_role=pg.role)
        try:
            yield AppDb(pg_db, pg.connect_transactional, "%s")
        finally:
            pg_db.close()
            store.close()
