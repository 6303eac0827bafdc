"""Throwaway PostgreSQL databases (and app roles) on the local server."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql

ADMIN_URL = os.environ.get("WASMLET_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")


@dataclass(frozen=True)
class PgDatabase:
    name: str
    role: str
    url: str

    def connect(self) -> psycopg.Connection[tuple[object, ...]]:
        return psycopg.connect(self.url, autocommit=True)

    def connect_transactional(self) -> psycopg.Connection[tuple[object, ...]]:
        """Commit and rollback by hand, as an application does."""
        return psycopg.connect(self.url)

    def env(self) -> dict[str, str]:
        return {"WASMLET_DATABASE_URL": self.url, "WASMLET_APP_ROLE": self.role}


def _url_for(database: str) -> str:
    return urlunsplit(urlsplit(ADMIN_URL)._replace(path=f"/{database}"))


@contextmanager
def fresh_database() -> Iterator[PgDatabase]:
    """A new database and a new app role name; both dropped afterwards."""
    suffix = uuid.uuid4().hex[:10]
    db = PgDatabase(
        f"wasmlet_t_{suffix}", f"wasmlet_t_{suffix}_app", _url_for(f"wasmlet_t_{suffix}")
    )
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(db.name)))
    try:
        yield db
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(db.name))
            )
            admin.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(db.role)))
