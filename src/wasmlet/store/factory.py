"""Opens the store the settings name."""

from __future__ import annotations

from pathlib import Path

from wasmlet.store.base import Store


def open_store(
    database_url: str | None,
    default_sqlite_path: Path,
    *,
    schema: str = "wasmlet",
    pool_size: int | None = None,
) -> Store:
    """`pool_size`: PostgreSQL connections at most (default `POOL_SIZE`); SQLite keeps
    one writer connection whatever it is (see `SqliteStore`)."""
    if database_url and database_url.startswith(("postgresql://", "postgres://")):
        from wasmlet.store.postgres import POOL_SIZE, PostgresStore

        return PostgresStore(database_url, schema=schema, pool_size=pool_size or POOL_SIZE)
    if database_url and database_url.startswith("sqlite:///"):
        from wasmlet.store.sqlite import SqliteStore

        return SqliteStore(Path(database_url.removeprefix("sqlite:///")))
    if database_url:
        raise ValueError(f"unsupported database URL scheme: {database_url.split(':', 1)[0]}")
    from wasmlet.store.sqlite import SqliteStore

    return SqliteStore(default_sqlite_path)
