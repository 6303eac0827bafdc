"""The database gateway built alone: a real SQLite database behind a switch that fails it,
and a real breaker on a clock the test drives.

A failure the database layer does not translate (a driver bug, an unexpected error) is
answered as `db_unavailable` and gives the breaker its verdict, so a half-open probe that
hits one cannot leave the breaker shut for good; a cancelled call gives no verdict.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest

from wasmlet.appdb.base import AppDatabase, QueryError, QueryErrorType
from wasmlet.appdb.sqlite import SqliteAppDatabase
from wasmlet.invocation.database_calls import DatabaseGateway
from wasmlet.reliability.breaker import BreakerPolicy, BreakerState, CircuitBreaker
from wasmlet.runtime.outcome import HostCall

COOLDOWN_S = 10.0


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Switchable:
    """Delegates to a real database unless told to fail (a QueryError or anything else)."""

    def __init__(self, inner: AppDatabase) -> None:
        self.inner = inner
        self.failure: BaseException | None = None
        self.release: float = 0.0

    def query(self, sql: str, params: list[Any], deadline: float, max_bytes: int) -> bytes:
        if self.release:
            time.sleep(self.release)
        if self.failure is not None:
            raise self.failure
        return self.inner.query(sql, params, deadline, max_bytes)

    def close(self) -> None:
        self.inner.close()


def call(sql: str = "SELECT 1 AS one") -> HostCall:
    return HostCall("db_query", "inv-1", "fn", sql, [], time.monotonic() + 30)


def state(breaker: CircuitBreaker) -> BreakerState:
    return breaker.state  # read anew each time (no narrowing across awaits)


def answer(reply: bytes) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(reply)
    return result


@pytest.fixture
def parts(tmp_path: Path) -> Any:
    clock = Clock()
    database = Switchable(SqliteAppDatabase(tmp_path / "app.db"))
    breaker = CircuitBreaker(
        BreakerPolicy(failure_rate=0.5, window_s=60, min_calls=3, cooldown_s=COOLDOWN_S), clock
    )
    gateway = DatabaseGateway(database, breaker, threads=2, max_bytes=1 << 20)  # type: ignore[arg-type]
    yield clock, database, breaker, gateway
    gateway.close()


def test_an_untranslated_failure_is_db_unavailable_and_a_verdict_for_the_probe(parts: Any) -> None:
    clock, database, breaker, gateway = parts

    async def scenario() -> None:
        database.failure = QueryError(QueryErrorType.DB_UNAVAILABLE, "connection refused")
        for _ in range(3):
            assert answer(await gateway.handle(call()))["error"]["type"] == "db_unavailable"
        assert state(breaker) is BreakerState.OPEN
        clock.now += COOLDOWN_S + 1
        database.failure = RuntimeError("a driver bug")  # the probe meets something else
        reply = answer(await gateway.handle(call()))
        assert reply["error"]["type"] == "db_unavailable"
        assert "RuntimeError" in reply["error"]["message"]
        assert state(breaker) is BreakerState.OPEN  # a verdict: the probe failed
        clock.now += COOLDOWN_S + 1
        database.failure = None
        assert answer(await gateway.handle(call())) == {"rows": [{"one": 1}], "row_count": 1}
        assert state(breaker) is BreakerState.CLOSED

    asyncio.run(scenario())


def test_a_cancelled_probe_frees_the_probe_slot(parts: Any) -> None:
    clock, database, breaker, gateway = parts

    async def scenario() -> None:
        database.failure = QueryError(QueryErrorType.DB_UNAVAILABLE, "connection refused")
        for _ in range(3):
            await gateway.handle(call())
        clock.now += COOLDOWN_S + 1
        database.failure, database.release = None, 0.3
        probe = asyncio.create_task(gateway.handle(call()))
        await asyncio.sleep(0.05)  # the probe is in the database
        probe.cancel()
        with pytest.raises(asyncio.CancelledError):
            await probe
        database.release = 0.0
        assert answer(await gateway.handle(call()))["rows"] == [{"one": 1}]  # a new probe
        assert state(breaker) is BreakerState.CLOSED

    asyncio.run(scenario())
