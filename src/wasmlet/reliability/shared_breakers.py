"""Circuit breakers shared by every node on one database.

Each function has one breaker for the cluster, a row in `function_breakers` (no row:
closed). A node never asks the database on a call to a closed breaker:

- every call's verdict is counted in memory, per function and whole second; a failure
  that tips the window as the node knows it (all nodes' counts at the last sync plus
  its own since) opens the breaker on this node at once, shared at the next sync;
- every `sync_s` (default 1 s) a node adds its counts to `breaker_counts`, reads
  every breaker row back, and for each function it counted sums the window over all
  nodes; over the threshold it opens the breaker (one node wins: the update is
  conditional on the closed state it read);
- a call to an open breaker is refused from the node's copy until the cool-down ends;
  then the first node to be called claims the one probe with a conditional update
  (one round trip, only then); the probe's verdict is written at the next sync.

Staleness: a breaker opened on one node is seen by all within one `sync_s` (plus the
time the write takes); the window includes every node's calls up to `sync_s` old.
While the database is unreachable a node keeps its last copy: a closed breaker stays
closed (calls not shared), an open one refuses until the database answers again.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace

from wasmlet.errors import DbUnavailable
from wasmlet.registry.models import BreakerConfig
from wasmlet.reliability.breaker import BreakerPolicy, BreakerState
from wasmlet.reliability.breakers import STATE_VALUE, log_transition, policy_for
from wasmlet.store.base import Row, Store
from wasmlet.tasks import cancel_and_wait
from wasmlet.telemetry.logs import get_logger
from wasmlet.telemetry.metrics import Metrics

PRUNE_EVERY = 60  # syncs between prunes of old counts and deleted functions


@dataclass(frozen=True, slots=True)
class SharedState:
    state: BreakerState = BreakerState.CLOSED
    counts_since: float = 0.0
    open_until: float = 0.0
    probe_node: str | None = None
    probe_until: float = 0.0
    reason: str = ""

    @classmethod
    def of(cls, row: Row) -> SharedState:
        return cls(
            BreakerState(row["state"]), float(row["counts_since"]), float(row["open_until"]),
            row["probe_node"], float(row["probe_until"]), str(row["reason"]),
        )  # fmt: skip


CLOSED = SharedState()


@dataclass(frozen=True, slots=True)
class Move:
    function: str
    old: BreakerState
    new: BreakerState
    why: str


@dataclass(frozen=True, slots=True)
class Window:
    """A function's calls and failures over its window, all nodes, read at `at`."""

    calls: int
    failures: int
    at: float


@dataclass(frozen=True, slots=True)
class Opening:
    """A breaker this node opened on a call; written at the next sync."""

    at: float
    until: float
    why: str
    counts_since: float


@dataclass(slots=True)
class SyncResult:
    states: dict[str, SharedState]
    moves: list[Move] = field(default_factory=list)
    windows: dict[str, Window] = field(default_factory=dict)


class SharedGate:
    def __init__(self, owner: SharedBreakers, function: str, policy: BreakerPolicy) -> None:
        self._owner = owner
        self.function = function
        self.policy = policy

    async def allow(self) -> bool:
        return await self._owner._allow(self)

    def retry_after(self) -> float:
        return self._owner._retry_after(self)

    def record(self, success: bool) -> None:
        self._owner._record(self, success)

    def abandon(self) -> None:
        self._owner._abandon(self)


class SharedBreakers:
    def __init__(
        self,
        store: Store,
        node: str,
        defaults: BreakerPolicy,
        clock: Callable[[], float],
        metrics: Metrics,
        *,
        sync_s: float = 1.0,
    ) -> None:
        self._store = store
        self._node = node
        self._defaults = defaults
        self._clock = clock
        self._metrics = metrics
        self.sync_s = sync_s
        self._gates: dict[str, SharedGate] = {}
        self._states: dict[str, SharedState] = {}
        self._windows: dict[str, Window] = {}
        self._pending: dict[tuple[str, int], list[int]] = {}
        self._unsynced: dict[str, list[int]] = {}  # per function, since the last sync
        self._openings: dict[str, Opening] = {}
        self._probing: set[str] = set()
        self._verdicts: dict[str, tuple[bool | None, float]] = {}  # probe outcomes, when
        self._syncs = 0
        self._task: asyncio.Task[None] | None = None
        self._unreachable = False
        self._log = get_logger("circuit_breaker")

    # -- the invoker's side: memory only, but for the claim of a probe -------------

    def get(self, function: str, config: BreakerConfig) -> SharedGate | None:
        if not config.enabled:
            self._gates.pop(function, None)
            return None
        policy = policy_for(self._defaults, config)
        gate = self._gates.get(function)
        if gate is None or gate.policy != policy:
            gate = self._gates[function] = SharedGate(self, function, policy)
        return gate

    def view(self, function: str) -> dict[str, object]:
        shared = self._states.get(function, CLOSED)
        window = self._windows.get(function)
        calls, failures = (window.calls, window.failures) if window else (0, 0)
        return {
            "state": str(shared.state),
            "error_rate": round(failures / calls, 4) if calls else 0.0,
            "retry_after_s": round(self._wait(shared), 3),
            "scope": "cluster",
        }

    def refusing(self) -> set[str]:
        now = self._clock()
        return {
            function
            for function, shared in self._states.items()
            if function in self._gates
            and (
                self._wait(shared) > 0
                or function in self._probing
                or (shared.state is BreakerState.HALF_OPEN and now < shared.probe_until)
            )
        }

    async def _allow(self, gate: SharedGate) -> bool:
        function = gate.function
        shared = self._states.get(function, CLOSED)
        if shared.state is BreakerState.CLOSED:
            return True
        if function in self._probing or self._wait(shared) > 0:
            return False
        if shared.state is BreakerState.HALF_OPEN and self._clock() < shared.probe_until:
            return False
        self._probing.add(function)  # one claim at a time from this node
        now = self._clock()
        until = now + gate.policy.cooldown_s
        try:
            won = await asyncio.to_thread(
                self._store.execute, "claim_breaker_probe",
                function_name=function, node=self._node, until=until, now=now,
            )  # fmt: skip
        except DbUnavailable:
            won = 0  # the last known state holds: open
        if won != 1:
            self._probing.discard(function)
            return False
        self._set(function, replace(
            shared, state=BreakerState.HALF_OPEN, probe_node=self._node, probe_until=until
        ))  # fmt: skip
        self._moved(
            Move(function, shared.state, BreakerState.HALF_OPEN, "cool-down over: one probe")
        )
        return True

    def _retry_after(self, gate: SharedGate) -> float:
        return self._wait(self._states.get(gate.function, CLOSED))

    def _wait(self, shared: SharedState) -> float:
        if shared.state is not BreakerState.OPEN:
            return 0.0
        return max(0.0, shared.open_until - self._clock())

    def _record(self, gate: SharedGate, success: bool) -> None:
        function, now = gate.function, self._clock()
        if function in self._probing:
            self._probing.discard(function)
            self._verdicts[function] = (success, now)
            shared = self._states.get(function, CLOSED)
            if success:
                self._set(function, SharedState(counts_since=now))
            else:
                until = now + gate.policy.cooldown_s
                self._set(function, replace(shared, state=BreakerState.OPEN, open_until=until))
            return
        if self._states.get(function, CLOSED).state is not BreakerState.CLOSED:
            return  # admitted before the breaker opened: the window restarted since
        for counts in (
            self._pending.setdefault((function, math.floor(now)), [0, 0]),
            self._unsynced.setdefault(function, [0, 0]),
        ):
            counts[0] += 1
            counts[1] += 0 if success else 1
        if not success:
            self._open_if_over(gate, now)

    def _open_if_over(self, gate: SharedGate, now: float) -> None:
        """Open on the call that tips the window, as this node knows it: every node's
        calls as of the last sync (if recent) plus this node's since."""
        function, policy = gate.function, gate.policy
        calls, failures = self._unsynced[function]
        window = self._windows.get(function)
        if window is not None and now - window.at <= 2 * self.sync_s:
            calls, failures = calls + window.calls, failures + window.failures
        if calls < policy.min_calls or failures / calls <= policy.failure_rate:
            return
        shared = self._states.get(function, CLOSED)
        why = f"{failures} of {calls} calls failed"
        until = now + policy.cooldown_s
        self._openings[function] = Opening(now, until, why, shared.counts_since)
        self._set(function, SharedState(BreakerState.OPEN, now, until, reason=why))
        self._moved(Move(function, BreakerState.CLOSED, BreakerState.OPEN, why))

    def _abandon(self, gate: SharedGate) -> None:
        function = gate.function
        if function in self._probing:
            self._probing.discard(function)
            self._verdicts[function] = (None, self._clock())
            shared = self._states.get(function, CLOSED)
            self._set(function, replace(shared, state=BreakerState.OPEN, open_until=0.0))

    # -- the sync loop --------------------------------------------------------------

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="breaker-sync")

    async def aclose(self) -> None:
        task, self._task = self._task, None
        await cancel_and_wait(task)
        await self.sync()  # the last counts and probe verdicts, if the database is there

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.sync_s)
            await self.sync()

    async def sync(self) -> None:
        deltas, self._pending = self._pending, {}
        verdicts, self._verdicts = self._verdicts, {}
        openings, self._openings = self._openings, {}
        self._unsynced = {}
        policies = {name: gate.policy for name, gate in self._gates.items()}
        now = self._clock()
        try:
            result = await asyncio.to_thread(
                self.sync_once, now, deltas, verdicts, policies, openings
            )
        except DbUnavailable as exc:
            # Counts are dropped; decisions are kept for the next sync.
            self._verdicts = {**verdicts, **self._verdicts}
            self._openings = {**openings, **self._openings}
            if not self._unreachable:
                self._unreachable = True
                self._log.warning("breaker sync failed: keeping the last known states",
                                  error=exc.message)  # fmt: skip
            return
        except Exception as exc:  # a supervision loop goes on; the next sync may do
            self._verdicts = {**verdicts, **self._verdicts}
            self._openings = {**openings, **self._openings}
            self._log.error("breaker sync failed", error=f"{type(exc).__name__}: {exc}")
            return
        self._unreachable = False
        for move in result.moves:
            self._moved(move)
        for function in set(self._states) | set(result.states):
            if not self._deciding(function):
                self._set(function, result.states.get(function, CLOSED))
        self._windows.update(result.windows)

    def sync_once(
        self,
        now: float,
        deltas: Mapping[tuple[str, int], list[int]],
        verdicts: Mapping[str, tuple[bool | None, float]],
        policies: Mapping[str, BreakerPolicy],
        openings: Mapping[str, Opening] | None = None,
    ) -> SyncResult:
        """One round with the database (in a thread): counts and verdicts out, states in."""
        store, node = self._store, self._node
        moves: list[Move] = []
        if deltas:
            store.execute_many("add_breaker_counts", [
                {"function_name": f, "bucket": bucket, "calls": c[0], "failures": c[1]}
                for (f, bucket), c in deltas.items()
            ])  # fmt: skip
        for function, opening in (openings or {}).items():
            # No row changed: another node opened it first, and its row is read below.
            store.execute(
                "open_breaker",
                function_name=function,
                now=opening.at,
                until=opening.until,
                reason=opening.why,
                counts_since=opening.counts_since,
            )
        for function, (verdict, at) in verdicts.items():
            args = {"function_name": function, "node": node, "now": at}
            if verdict is None:
                store.execute("release_breaker_probe", **args)
            elif verdict:
                if store.execute("close_breaker", **args, reason="probe succeeded") == 1:
                    moves.append(Move(function, BreakerState.HALF_OPEN, BreakerState.CLOSED,
                                      "probe succeeded"))  # fmt: skip
            else:
                until = at + policies.get(function, self._defaults).cooldown_s
                if store.execute("reopen_breaker", **args, until=until, reason="probe failed"):
                    moves.append(Move(function, BreakerState.HALF_OPEN, BreakerState.OPEN,
                                      "probe failed"))  # fmt: skip
        states = {
            row["function_name"]: SharedState.of(row) for row in store.fetch_all("list_breakers")
        }
        windows: dict[str, Window] = {}
        self._syncs += 1
        prune = self._syncs % PRUNE_EVERY == 0
        for function in {f for f, _ in deltas}:
            policy = policies.get(function)
            shared = states.get(function, CLOSED)
            if policy is None or shared.state is not BreakerState.CLOSED:
                continue
            since = max(now - policy.window_s, shared.counts_since)
            row = store.fetch_one("breaker_window", function_name=function, since=since)
            calls, failures = (int(row["calls"]), int(row["failures"])) if row else (0, 0)
            windows[function] = Window(calls, failures, now)
            if prune:
                store.execute("prune_breaker_counts", function_name=function, since=since)
            if calls < policy.min_calls or failures / calls <= policy.failure_rate:
                continue
            why = f"{failures} of {calls} calls failed on all nodes"
            opened = store.execute(
                "open_breaker", function_name=function, now=now, until=now + policy.cooldown_s,
                reason=why, counts_since=shared.counts_since,
            )  # fmt: skip
            if opened == 1:
                moves.append(Move(function, BreakerState.CLOSED, BreakerState.OPEN, why))
                states[function] = SharedState(BreakerState.OPEN, now, now + policy.cooldown_s,
                                               reason=why)  # fmt: skip
        if prune:
            store.execute("prune_orphan_breakers")
            store.execute("prune_orphan_breaker_counts")
        return SyncResult(states, moves, windows)

    def _deciding(self, function: str) -> bool:
        """This node changed the state since the sync started: its copy is newer."""
        return (
            function in self._verdicts or function in self._probing or (function in self._openings)
        )

    def _set(self, function: str, shared: SharedState) -> None:
        old = self._states.get(function, CLOSED)
        self._states[function] = shared
        if old.state is not shared.state:
            self._metrics.breaker_state.labels(function).set(STATE_VALUE[shared.state])

    def _moved(self, move: Move) -> None:
        """A transition this node made: logged and counted here alone."""
        log_transition(self._metrics, move.function, move.old, move.new, move.why)
