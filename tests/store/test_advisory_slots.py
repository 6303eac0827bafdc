"""Cluster-wide concurrency slots on a real PostgreSQL: two `AdvisorySlots` are two nodes."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest

from tests.support.postgres import ADMIN_URL
from wasmlet.errors import DbUnavailable
from wasmlet.store.advisory_slots import AdvisorySlots, slot_key

pytestmark = pytest.mark.postgres


async def settle(slots: AdvisorySlots) -> None:
    """Let the background unlocks finish."""
    for _ in range(200):
        if not slots._unlocks:
            return
        await asyncio.sleep(0.01)


def test_a_limit_holds_across_nodes_and_a_released_slot_is_free_again() -> None:
    async def scenario() -> None:
        schema = f"slots_{uuid.uuid4().hex}"
        a, b = AdvisorySlots(ADMIN_URL, schema=schema), AdvisorySlots(ADMIN_URL, schema=schema)
        try:
            first = await a.acquire("f", 2)
            second = await b.acquire("f", 2)
            assert first is not None and second is not None
            assert await a.acquire("f", 2) is None
            assert await b.acquire("f", 2) is None
            assert await a.acquire("g", 2) is not None  # another function, its own slots
            first.release()
            first.release()  # idempotent
            await settle(a)
            third = await b.acquire("f", 2)
            assert third is not None and b.held("f") == 2
            assert await a.acquire("f", 2) is None
        finally:
            await a.aclose()
            await b.aclose()

    asyncio.run(scenario())


def test_a_dead_node_frees_its_slots_with_its_session() -> None:
    async def scenario() -> None:
        schema = f"slots_{uuid.uuid4().hex}"
        a, b = AdvisorySlots(ADMIN_URL, schema=schema), AdvisorySlots(ADMIN_URL, schema=schema)
        try:
            assert await a.acquire("f", 1) is not None
            assert await b.acquire("f", 1) is None
            await a.aclose()  # the session ends, as when the node's process is killed
            # PostgreSQL ends the session (and frees its locks) just after the socket closes.
            deadline = time.monotonic() + 10
            while await b.acquire("f", 1) is None:
                assert time.monotonic() < deadline, "the slot was never freed"
                await asyncio.sleep(0.01)
        finally:
            await b.aclose()

    asyncio.run(scenario())


def test_an_unreachable_database_fails_closed() -> None:
    async def scenario() -> None:
        slots = AdvisorySlots("postgresql://postgres@127.0.0.1:1/test", schema="x")
        with pytest.raises(DbUnavailable):
            await slots.acquire("f", 1)
        with pytest.raises(DbUnavailable):  # at once, without a new connect for a second
            await slots.acquire("f", 1)
        await slots.aclose()

    asyncio.run(scenario())


def test_keys_are_stable_signed_32_bit_and_per_schema() -> None:
    key = slot_key("wasmlet", "f")
    assert key == slot_key("wasmlet", "f")
    assert -(2**31) <= key < 2**31
    assert key != slot_key("other", "f") and key != slot_key("wasmlet", "g")


def test_a_slot_released_a_moment_ago_is_taken_again_not_refused() -> None:
    """A call ends and the next starts at once (a claimed job, a queued request): its
    unlock is still on the wire. The next call waits for it instead of a 429."""

    async def scenario() -> None:
        slots = AdvisorySlots(ADMIN_URL, schema=f"slots_{uuid.uuid4().hex}")
        try:
            for _ in range(20):
                slot = await slots.acquire("f", 1)
                assert slot is not None
                slot.release()  # the unlock goes out in the background
            assert slots.held("f") == 1  # the last one, unlocking
        finally:
            await slots.aclose()

    asyncio.run(scenario())
