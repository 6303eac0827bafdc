"""The one LISTEN loop, against a real PostgreSQL: notifications arrive, a killed
connection is made again (and the caller hears of it to catch up), a refused one is
retried after the backoff, and cancellation ends it."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable

import psycopg
import pytest

from tests.support.postgres import fresh_database
from wasmlet.backoff import Backoff
from wasmlet.store.listen import listen_forever

pytestmark = pytest.mark.postgres

CHANNEL = "wasmlet test channel"  # a space: the name must be quoted as an identifier
QUICK = Backoff(base_s=0.05, cap_s=0.2)


async def until(check: Callable[[], bool], what: str, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


def notify(url: str, payload: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SELECT pg_notify(%s, %s)", [CHANNEL, payload])


def kill_listeners(url: str) -> int:
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND query LIKE 'LISTEN%%'"
        ).fetchall()
    return len(rows)


def test_notifications_arrive_and_a_killed_connection_is_made_again() -> None:
    heard: list[str] = []
    connected: list[float] = []

    async def scenario(url: str) -> None:
        task = asyncio.create_task(
            listen_forever(
                url,
                CHANNEL,
                on_notify=heard.append,
                on_connected=lambda: connected.append(time.monotonic()),
                operation="test",
                backoff=QUICK,
            )
        )
        try:
            await until(lambda: len(connected) == 1, "the first connection")
            await asyncio.to_thread(notify, url, "one")
            await until(lambda: heard == ["one"], "the first notification")
            assert await asyncio.to_thread(kill_listeners, url) == 1
            await until(lambda: len(connected) == 2, "the connection made again")
            await asyncio.to_thread(notify, url, "two")
            await until(lambda: heard == ["one", "two"], "a notification after the cut")
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        assert task.cancelled()

    with fresh_database() as db:
        asyncio.run(scenario(db.url))


def test_a_database_that_refuses_is_retried_without_giving_up() -> None:
    connected: list[bool] = []

    async def scenario() -> None:
        task = asyncio.create_task(
            listen_forever(
                "postgresql://postgres@127.0.0.1:5432/wasmlet_no_such_database",
                CHANNEL,
                on_notify=lambda _: None,
                on_connected=lambda: connected.append(True),
                operation="test",
                backoff=QUICK,
            )
        )
        await asyncio.sleep(0.6)  # several refusals, each followed by a backoff
        assert not task.done()  # still trying: a refusal does not end the loop
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    asyncio.run(scenario())
    assert connected == []
