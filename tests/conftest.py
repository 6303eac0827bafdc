"""Shared fixtures: a real server for the session, and a factory for special ones."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import psycopg
import pytest

from tests.support.postgres import ADMIN_URL
from tests.support.server import ServerProcess, running_server
from tests.support.tls_context import share_default_context
from wasmlet.store.base import Store
from wasmlet.store.postgres import PostgresStore
from wasmlet.store.sqlite import SqliteStore

SESSION_SERVER_ENV = {
    "WASMLET_MAX_PAYLOAD_BYTES": str(1024 * 1024),
    "WASMLET_TIMEOUT_GRACE_MS": "1000",
}

_names = itertools.count()


def pytest_configure(config: pytest.Config) -> None:
    share_default_context()  # every httpx request of the tests: no CA bundle parsed again


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    yield from running_server(tmp_path_factory.mktemp("server"), **SESSION_SERVER_ENV)


ServerFactory = Callable[..., AbstractContextManager[ServerProcess]]


@pytest.fixture
def start_server(tmp_path: Path) -> ServerFactory:
    """Start a server with its own settings: `with start_server(WASMLET_X="1") as s:`."""

    @contextmanager
    def start(**env: str) -> Iterator[ServerProcess]:
        yield from running_server(tmp_path / f"data{next(_names)}", **env)

    return start


@pytest.fixture
def fname(request: pytest.FixtureRequest) -> str:
    """A function name unique to this test."""
    base = request.node.name.lower().replace("[", "-").replace("]", "")
    cleaned = "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in base)
    return f"t{next(_names)}-{cleaned}"[:60].rstrip("-_")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """The platform store on both backends: a SQLite file, a throwaway PostgreSQL schema."""
    if request.param == "sqlite":
        with SqliteStore(tmp_path / "platform.db") as sqlite_store:
            yield sqlite_store
        return
    schema = f"wasmlet_test_{uuid.uuid4().hex[:12]}"
    try:
        with PostgresStore(ADMIN_URL, schema=schema) as pg_store:
            yield pg_store
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
