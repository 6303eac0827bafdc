"""Shared circuit breakers: two nodes (two `SharedBreakers`) on one real store, a fake clock.

The sync is driven by hand (`sync()`), so every step is one sync interval."""

from __future__ import annotations

import asyncio

from wasmlet.registry.models import BreakerConfig
from wasmlet.reliability.breaker import BreakerPolicy
from wasmlet.reliability.shared_breakers import SharedBreakers
from wasmlet.store.base import Store
from wasmlet.telemetry.metrics import Metrics

CONFIG = BreakerConfig(failure_rate=0.5, window_s=60, min_calls=4, cooldown_s=30)
FUNCTION = "f"


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def node(store: Store, name: str, clock: Clock, metrics: Metrics | None = None) -> SharedBreakers:
    return SharedBreakers(store, name, BreakerPolicy(), clock, metrics or Metrics())


def prepared(store: Store) -> Store:
    store.migrate()
    args = {"key": "k", "wasm": b"\0asm", "now": 1.0, "name": FUNCTION, "config": "{}",
            "triggers": "[]", "enabled": True, "version": 1, "module_key": "k"}  # fmt: skip
    store.execute("put_module", **args)
    store.execute("insert_function", **args)
    return store


async def calls(breakers: SharedBreakers, *outcomes: bool) -> int:
    """Run `outcomes` through the gate; how many were allowed."""
    gate = breakers.get(FUNCTION, CONFIG)
    assert gate is not None
    allowed = 0
    for success in outcomes:
        if await gate.allow():
            allowed += 1
            gate.record(success)
    return allowed


def transitions(metrics: Metrics, state: str) -> float:
    value = metrics.registry.get_sample_value(
        "functions_circuit_transitions_total", {"name": FUNCTION, "state": state}
    )
    return value or 0.0


def test_failures_on_two_nodes_open_the_breaker_for_both(store: Store) -> None:
    async def scenario() -> None:
        clock = Clock()
        prepared(store)
        ma, mb = Metrics(), Metrics()
        a, b = node(store, "a", clock, ma), node(store, "b", clock, mb)
        # Two failures on each node: neither alone has min_calls (4), together they do.
        assert await calls(a, False, False) == 2
        assert await calls(b, False, False) == 2
        await a.sync()
        assert a.view(FUNCTION)["state"] == "closed"  # a alone saw 2 calls
        await b.sync()  # b's counts make 4 of 4 failed: b opens it
        assert b.view(FUNCTION)["state"] == "open"
        assert await calls(b, True) == 0
        assert await calls(a, True) == 1  # a has not synced yet: at most one sync stale
        await a.sync()
        assert await calls(a, True) == 0
        gate = a.get(FUNCTION, CONFIG)
        assert gate is not None and 29 <= gate.retry_after() <= 30
        assert transitions(mb, "open") == 1 and transitions(ma, "open") == 0

    asyncio.run(scenario())


def test_after_the_cool_down_one_probe_for_the_cluster(store: Store) -> None:
    async def scenario() -> None:
        clock = Clock()
        prepared(store)
        a, b = node(store, "a", clock), node(store, "b", clock)
        await calls(a, False, False, False, False)
        await a.sync()
        await b.sync()
        assert b.view(FUNCTION)["state"] == "open"
        clock.now += 31
        gate_a, gate_b = a.get(FUNCTION, CONFIG), b.get(FUNCTION, CONFIG)
        assert gate_a is not None and gate_b is not None
        assert await gate_b.allow()  # b claims the probe
        assert not await gate_a.allow()  # a's copy says the cool-down is over; the claim fails
        assert not await gate_b.allow()  # one probe, also on b
        gate_b.record(True)
        assert b.view(FUNCTION)["state"] == "closed"
        await b.sync()
        await a.sync()
        assert a.view(FUNCTION)["state"] == "closed"
        assert await calls(a, True) == 1

    asyncio.run(scenario())


def test_a_failed_probe_opens_it_again_everywhere(store: Store) -> None:
    async def scenario() -> None:
        clock = Clock()
        prepared(store)
        a, b = node(store, "a", clock), node(store, "b", clock)
        await calls(a, False, False, False, False)
        await a.sync()
        clock.now += 31
        await b.sync()
        assert await calls(b, False) == 1  # the probe, failed
        await b.sync()
        await a.sync()
        assert a.view(FUNCTION)["state"] == "open"
        assert await calls(a, True) == 0
        clock.now += 31
        gate = a.get(FUNCTION, CONFIG)
        assert gate is not None and await gate.allow()  # the next cool-down's probe
        gate.abandon()  # never ran: the probe is free again, for any node
        await a.sync()
        await b.sync()
        assert await calls(b, True) == 1

    asyncio.run(scenario())


def test_successes_keep_it_closed_and_a_disabled_breaker_is_not_counted(store: Store) -> None:
    async def scenario() -> None:
        clock = Clock()
        prepared(store)
        a = node(store, "a", clock)
        await calls(a, True, True, True, False, False)  # 2 of 5 failed: 40% <= 50%
        await a.sync()
        assert a.view(FUNCTION) == {
            "state": "closed", "error_rate": 0.4, "retry_after_s": 0.0, "scope": "cluster",
        }  # fmt: skip
        assert a.get(FUNCTION, BreakerConfig(enabled=False)) is None

    asyncio.run(scenario())


def test_calls_older_than_the_window_do_not_count(store: Store) -> None:
    async def scenario() -> None:
        clock = Clock()
        prepared(store)
        a = node(store, "a", clock)
        await calls(a, False, False, False)
        await a.sync()
        clock.now += 61  # past the 60 s window
        await calls(a, False)
        await a.sync()
        assert a.view(FUNCTION)["state"] == "closed"

    asyncio.run(scenario())


def test_the_failure_that_tips_the_window_opens_it_at_once_then_everywhere(store: Store) -> None:
    async def scenario() -> None:
        clock = Clock()
        prepared(store)
        ma = Metrics()
        a, b = node(store, "a", clock, ma), node(store, "b", clock)
        await calls(b, False, False)
        await b.sync()
        await calls(a, False)
        await a.sync()  # 3 of 3 failed on all nodes: under min_calls
        assert a.view(FUNCTION)["state"] == "closed"
        assert await calls(a, False, True) == 1  # that failure made 4 of 4
        assert a.view(FUNCTION)["state"] == "open"
        assert transitions(ma, "open") == 1
        await b.sync()
        assert b.view(FUNCTION)["state"] == "closed"  # not yet written
        await a.sync()
        await b.sync()
        assert b.view(FUNCTION)["state"] == "open"
        assert await calls(b, True) == 0
        assert transitions(ma, "open") == 1

    asyncio.run(scenario())
