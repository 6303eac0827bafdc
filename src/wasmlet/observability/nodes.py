"""Nodes list themselves: a heartbeat row per running `wasmlet serve`.

Every `heartbeat_s` a node writes its row (address, version, workers, calls in
flight). A reader calls a node `live` while its heartbeat is at most
`STALE_AFTER_BEATS` beats old, `stale` after that; a node that stops cleanly deletes
its row, and rows silent for `forget_s` are deleted by whichever node beats next.
Ages are computed from each node's wall clock: nodes are expected to run NTP.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from wasmlet.errors import DbUnavailable
from wasmlet.store.base import Store
from wasmlet.tasks import cancel_and_wait
from wasmlet.telemetry.logs import get_logger

STALE_AFTER_BEATS = 3


@dataclass(frozen=True, slots=True)
class NodeIdentity:
    id: str
    address: str
    version: str
    started_at: float


@dataclass(frozen=True, slots=True)
class NodeLoad:
    workers: int
    workers_alive: int
    in_flight: int


class NodeHeartbeat:
    def __init__(
        self,
        store: Store,
        identity: NodeIdentity,
        load: Callable[[], NodeLoad],
        clock: Callable[[], float],
        *,
        heartbeat_s: float,
        forget_s: float,
    ) -> None:
        self._store = store
        self.identity = identity
        self._load = load
        self._clock = clock
        self.heartbeat_s = heartbeat_s
        self.forget_s = forget_s
        self._task: asyncio.Task[None] | None = None
        self._failing = False
        self._log = get_logger("node")

    @property
    def stale_after_s(self) -> float:
        return STALE_AFTER_BEATS * self.heartbeat_s

    def beat(self) -> None:
        load, me, now = self._load(), self.identity, self._clock()
        with self._store.transaction():
            self._store.execute(
                "upsert_node", node=me.id, address=me.address, wasmlet_version=me.version,
                started_at=me.started_at, now=now, workers=load.workers,
                workers_alive=load.workers_alive, in_flight=load.in_flight,
            )  # fmt: skip
            self._store.execute("forget_nodes", cutoff=now - self.forget_s)

    async def start(self) -> None:
        """The first beat (in a thread, as every beat), then one every `heartbeat_s`."""
        await asyncio.to_thread(self.beat)
        self._task = asyncio.get_running_loop().create_task(self._run(), name="node-heartbeat")

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.heartbeat_s)
            try:
                await asyncio.to_thread(self.beat)
            except DbUnavailable as exc:
                if not self._failing:
                    self._log.warning("node heartbeat failed", error=exc.message)
                self._failing = True
                continue
            except Exception as exc:  # the loop goes on: the next beat may land
                self._log.error("node heartbeat failed", error=f"{type(exc).__name__}: {exc}")
                continue
            self._failing = False

    async def aclose(self) -> None:
        task, self._task = self._task, None
        await cancel_and_wait(task)
        with contextlib.suppress(DbUnavailable):  # else the row goes stale, then is forgotten
            await asyncio.to_thread(self._store.execute, "delete_node", node=self.identity.id)

    def list(self) -> list[dict[str, Any]]:
        now = self._clock()
        nodes = []
        for row in self._store.fetch_all("list_nodes"):
            age = max(0.0, now - float(row["heartbeat_at"]))
            nodes.append({
                "id": row["id"],
                "address": row["address"],
                "version": row["version"],
                "started_at": float(row["started_at"]),
                "heartbeat_at": float(row["heartbeat_at"]),
                "heartbeat_age_s": round(age, 3),
                "status": "live" if age <= self.stale_after_s else "stale",
                "workers": int(row["workers"]),
                "workers_alive": int(row["workers_alive"]),
                "in_flight": int(row["in_flight"]),
                "self": row["id"] == self.identity.id,
            })  # fmt: skip
        return nodes
