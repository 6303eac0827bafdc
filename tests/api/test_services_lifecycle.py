"""`Services.start` undoes what it started when a later step fails (in-process, both backends).

The last start step is made to fail after checking that the earlier ones really are
running (worker processes, threads, database connections); once `start` has raised,
none of them may be left behind.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.support.postgres import PgDatabase, fresh_database
from wasmlet.api import services as services_module
from wasmlet.api.services import Services
from wasmlet.settings import Settings


class InjectedStartFailure(RuntimeError):
    pass


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest) -> Iterator[PgDatabase | None]:
    if request.param == "sqlite":
        yield None
        return
    with fresh_database() as pg:
        yield pg


def child_pids() -> set[int]:
    found: set[int] = set()
    for task in Path("/proc/self/task").iterdir():
        try:
            found.update(int(pid) for pid in (task / "children").read_text().split())
        except OSError:
            continue  # a thread that ended while we looked
    return found


def open_files_under(directory: Path) -> list[str]:
    paths = []
    for fd in Path("/proc/self/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue  # closed while we looked
        if target.startswith(str(directory)):
            paths.append(target)
    return paths


def pg_sessions(pg: PgDatabase) -> int:
    with psycopg.connect(pg.url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchone()
    assert row is not None
    return int(row[0])


@pytest.mark.timeout(120)  # a clean-up that waits on something left running is a failure
def test_a_failed_start_leaves_no_worker_thread_or_connection(
    backend: PgDatabase | None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data_dir = tmp_path / "data"
    settings = Settings(
        data_dir=data_dir,
        workers=2,
        database_url=backend.url if backend else None,
        app_role=backend.role if backend else "wasmlet_app",
    )
    threads_before = set(threading.enumerate())
    children_before = child_pids()
    seen: dict[str, Any] = {}
    real_heartbeat = services_module._node_heartbeat

    async def failing_last_step(*args: Any) -> Any:
        """Everything before this step is running: look, then fail."""
        seen["workers"] = child_pids() - children_before
        seen["threads"] = set(threading.enumerate()) - threads_before
        seen["files"] = open_files_under(data_dir)
        seen["sessions"] = pg_sessions(backend) if backend else 0
        await real_heartbeat(*args)  # started, and registered for clean-up, like the rest
        raise InjectedStartFailure("the last start step failed")

    monkeypatch.setattr(services_module, "_node_heartbeat", failing_last_step)
    with pytest.raises(InjectedStartFailure):
        asyncio.run(Services.start(settings))

    # The failure came late: workers, threads and connections were all up.
    assert len(seen["workers"]) >= settings.workers, seen
    assert seen["threads"], seen
    assert seen["files"] if backend is None else seen["sessions"] > 0, seen
    # ...and none of them is left.
    assert not (child_pids() & seen["workers"]), "worker processes left running"
    for pid in seen["workers"]:
        assert not Path(f"/proc/{pid}").exists(), f"worker {pid} left as a zombie"
    left = [t.name for t in threading.enumerate() if t in seen["threads"] and t.is_alive()]
    assert left == [], f"threads left running: {left}"
    assert open_files_under(data_dir) == [], "database files left open"
    if backend is not None:
        assert pg_sessions(backend) == 0, "PostgreSQL connections left open"
