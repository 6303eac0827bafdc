"""What the in-server platform alerts see of the whole cluster: read from the shared
platform database, so every node evaluates the same facts.

`StoreClusterView.read` makes one `ClusterState` from the store: the queue's oldest due
job, the dead letters buried in the last window (per function), the newest scheduler
heartbeat of any node, and each node's last sign of life from a `NodeSource`.

`NodeSource` is the seam for the node list: `SchedulerBeats` reads the per-node
scheduler heartbeats every node already writes once a tick; a node heartbeat table
(`GET /functions/v1/nodes`) plugs in the same way. A node is forgotten (no longer
reported) once silent for `FORGET_S`; a node that stops cleanly removes its own row.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from wasmlet.store.base import Store

FORGET_S = 300.0


@dataclass(frozen=True, slots=True)
class NodeBeat:
    id: str
    age_s: float
    address: str = ""


@dataclass(frozen=True, slots=True)
class ClusterState:
    oldest_job_age_s: float = 0.0
    new_dead_letters: Mapping[str, int] = field(default_factory=dict)
    scheduler_heartbeat_age_s: float | None = None  # None: no scheduler ever beat
    nodes: Sequence[NodeBeat] = ()


class NodeSource(Protocol):
    def beats(self, now: float) -> list[NodeBeat]:
        """Every node heard from in the last `FORGET_S`, with the age of its last beat."""


class ClusterView(Protocol):
    def read(self, now: float) -> ClusterState: ...


class SchedulerBeats:
    """Nodes as their schedulers see them: every node's scheduler writes a heartbeat row
    after each tick, so a node whose row stopped moving is down, cut off from the
    database, or has a stalled scheduler (and answers 503 on /health)."""

    def __init__(self, store: Store, forget_s: float = FORGET_S) -> None:
        self._store = store
        self._forget_s = forget_s

    def beats(self, now: float) -> list[NodeBeat]:
        rows = self._store.fetch_all("scheduler_heartbeats_since", since=now - self._forget_s)
        return [NodeBeat(str(row["node"]), max(0.0, now - float(row["beat_at"]))) for row in rows]


class StoreClusterView:
    def __init__(self, store: Store, nodes: NodeSource, *, window_s: float) -> None:
        self._store = store
        self._nodes = nodes
        self._window_s = window_s

    def read(self, now: float) -> ClusterState:
        store = self._store
        due = store.fetch_one("next_due_job")
        run_at = due["run_at"] if due else None
        oldest = max(0.0, now - float(run_at)) if run_at is not None else 0.0
        dead = {
            str(row["function_name"]): int(row["n"])
            for row in store.fetch_all("dead_letters_since", since=now - self._window_s)
        }
        beat = store.fetch_one("newest_scheduler_heartbeat")
        beat_at = beat["beat_at"] if beat else None
        heartbeat_age = max(0.0, now - float(beat_at)) if beat_at is not None else None
        return ClusterState(oldest, dead, heartbeat_age, tuple(self._nodes.beats(now)))
