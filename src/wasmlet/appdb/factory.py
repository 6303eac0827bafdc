"""Opens the application database the settings name."""

from __future__ import annotations

from pathlib import Path

from wasmlet.appdb.base import AppDatabase
from wasmlet.settings import Settings


def open_app_database(settings: Settings) -> AppDatabase:
    if settings.uses_postgres:
        from wasmlet.appdb.postgres import PostgresAppDatabase

        assert settings.database_url is not None
        return PostgresAppDatabase(
            settings.database_url,
            schema=settings.pg_schema,
            app_url=settings.app_database_url,
            app_role=settings.app_role,
        )
    from wasmlet.appdb.sqlite import SqliteAppDatabase

    path = settings.app_db_path
    if settings.app_database_url:
        if not settings.app_database_url.startswith("sqlite:///"):
            raise ValueError("with SQLite, WASMLET_APP_DATABASE_URL must be sqlite:///PATH")
        path = Path(settings.app_database_url.removeprefix("sqlite:///"))
    return SqliteAppDatabase(path)
