"""Cluster-wide concurrency slots as PostgreSQL session-level advisory locks.

Slot i of function f is the lock `(key(schema, f), i)` (the two-integer key space,
apart from the single bigint keys used elsewhere). All of a node's slots are held by
one dedicated connection, so:

- a node that dies (kill -9, crash, lost machine) frees its slots when PostgreSQL
  ends its session: at once when the node's socket closes, within the keep-alive
  bound below when the machine or the network is gone. Nothing to expire or sweep.
- a session may take a lock it already holds (advisory locks stack), so the node
  tries only the slots it does not hold itself (`_held`), and takes a slot in one
  round trip: the first lock it gets among them.

When the connection is lost every slot it held is gone with it; calls running under
them finish, and the node starts a new set with the next connection (`_generation`).
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass

import psycopg

from wasmlet.errors import DbUnavailable
from wasmlet.telemetry.logs import get_logger

CONNECT_TIMEOUT_S = 2
RECONNECT_PAUSE_S = 1.0
# The server notices a silent peer after idle + interval * count seconds (10 + 5 * 3).
SERVER_KEEPALIVE = (
    "-c tcp_keepalives_idle=10 -c tcp_keepalives_interval=5 -c tcp_keepalives_count=3"
)
TRY_SLOT = "SELECT s FROM unnest(%s::int[]) AS s WHERE pg_try_advisory_lock(%s, s) LIMIT 1"
UNLOCK = "SELECT pg_advisory_unlock(%s, %s)"


def slot_key(schema: str, function: str) -> int:
    """A signed 32-bit key per (platform schema, function).

    Two functions whose keys collide share one set of slots: both are limited more,
    never less, than configured (about 1 in 4 billion per pair)."""
    digest = hashlib.blake2b(f"wasmlet-slots:{schema}:{function}".encode(), digest_size=4)
    return int.from_bytes(digest.digest(), "big", signed=True)


@dataclass(eq=False, slots=True)
class AdvisorySlot:
    owner: AdvisorySlots
    function: str
    index: int
    generation: int
    released: bool = False

    def release(self) -> None:
        if not self.released:
            self.released = True
            self.owner._release_soon(self)


class AdvisorySlots:
    def __init__(
        self, url: str, *, schema: str, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._url = url
        self._schema = schema
        self._clock = clock
        self._conn: psycopg.AsyncConnection[tuple[int]] | None = None
        self._generation = 0
        self._held: dict[str, set[int]] = {}
        self._keys: dict[str, int] = {}
        self._acquiring = asyncio.Lock()
        self._paused_until = 0.0
        self._unlocks: set[asyncio.Task[None]] = set()
        self._unlocking: dict[str, set[asyncio.Task[None]]] = {}  # per function
        self.round_trips = 0  # statements sent for slots (the cost, for bench/)
        self._log = get_logger("cluster_slots")

    def held(self, function: str) -> int:
        return len(self._held.get(function, ()))

    async def acquire(self, function: str, limit: int) -> AdvisorySlot | None:
        async with self._acquiring:  # the free list must not change under a query
            conn = await self._connection()  # a new connection starts with nothing held
            held = self._held.setdefault(function, set())
            free = [index for index in range(limit) if index not in held]
            pending = self._unlocking.get(function)
            if not free and pending:
                # A call of this node has just ended: its slot is free once its unlock
                # lands (one round trip, queued already), so wait for that, not refuse.
                await asyncio.wait(set(pending))
                conn = await self._connection()
                held = self._held.setdefault(function, set())
                free = [index for index in range(limit) if index not in held]
            if not free:
                return None
            key = self._keys.get(function)
            if key is None:
                key = self._keys[function] = slot_key(self._schema, function)
            self.round_trips += 1
            try:
                row = await (await conn.execute(TRY_SLOT, (free, key))).fetchone()
            except psycopg.OperationalError as exc:
                await self._lose(exc)
                raise DbUnavailable(f"Database unavailable: {_first_line(exc)}") from exc
            if row is None:
                return None
            held.add(row[0])
            return AdvisorySlot(self, function, row[0], self._generation)

    def _release_soon(self, slot: AdvisorySlot) -> None:
        task = asyncio.get_running_loop().create_task(self._unlock(slot))
        self._unlocks.add(task)
        pending = self._unlocking.setdefault(slot.function, set())
        pending.add(task)

        def done(task: asyncio.Task[None]) -> None:
            self._unlocks.discard(task)
            pending.discard(task)
            if not pending and self._unlocking.get(slot.function) is pending:
                del self._unlocking[slot.function]

        task.add_done_callback(done)

    async def _unlock(self, slot: AdvisorySlot) -> None:
        if slot.generation != self._generation or self._conn is None:
            return  # its session is gone, and the lock with it
        self.round_trips += 1
        try:
            await self._conn.execute(UNLOCK, (self._keys[slot.function], slot.index))
        except psycopg.Error as exc:
            await self._lose(exc)
            return
        # Only now may another call of this node try the slot (a held lock would stack).
        if slot.generation == self._generation:
            self._held.get(slot.function, set()).discard(slot.index)

    async def _connection(self) -> psycopg.AsyncConnection[tuple[int]]:
        conn = self._conn
        if conn is not None and not conn.closed and not conn.broken:
            return conn
        if self._clock() < self._paused_until:
            raise DbUnavailable("Database unavailable: cluster slots reconnecting")
        try:
            conn = await psycopg.AsyncConnection.connect(
                self._url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S,
                options=SERVER_KEEPALIVE, keepalives=1, keepalives_idle=10,
                keepalives_interval=5, keepalives_count=3,
            )  # fmt: skip
        except psycopg.OperationalError as exc:
            self._paused_until = self._clock() + RECONNECT_PAUSE_S
            raise DbUnavailable(f"Database unavailable: {_first_line(exc)}") from exc
        self._conn = conn
        self._generation += 1
        self._held.clear()
        return conn

    async def _lose(self, exc: BaseException) -> None:
        """The session is unusable: its locks die with it; start afresh next time."""
        self._log.warning("cluster slots connection lost", error=_first_line(exc))
        conn, self._conn = self._conn, None
        self._generation += 1
        self._held.clear()
        if conn is not None:
            await conn.close()

    async def aclose(self) -> None:
        if self._unlocks:
            await asyncio.gather(*self._unlocks, return_exceptions=True)
        if self._conn is not None:
            await self._conn.close()
            self._conn = None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
