"""Both store backends, on real databases: a SQLite file and a PostgreSQL schema."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from wasmlet.store.base import Store
from wasmlet.store.postgres import PostgresStore
from wasmlet.store.sqlite import SqliteStore

PG_URL = os.environ.get("WASMLET_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "sqlite":
        with SqliteStore(tmp_path / "platform.db") as sqlite_store:
            yield sqlite_store
        return
    schema = f"wasmlet_test_{uuid.uuid4().hex[:12]}"
    try:
        with PostgresStore(PG_URL, schema=schema) as pg_store:
            yield pg_store
    finally:
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
