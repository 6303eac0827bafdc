"""The dispatcher through a database outage: failed ticks back off, one that succeeds
starts the count over."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.triggers.test_dispatcher import FakeInvoker, Ready, running, setup, until
from wasmlet.backoff import Backoff
from wasmlet.triggers import dispatcher as dispatcher_module


def test_failed_ticks_back_off_and_a_tick_that_succeeds_starts_over(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(dispatcher_module, "OUTAGE_BACKOFF", Backoff(base_s=0.01, cap_s=0.05))
    store, queue = setup(tmp_path)

    async def run() -> None:
        async with running(tmp_path, store, queue, FakeInvoker(), Ready()) as dispatcher:
            store.down = True
            await until(lambda: dispatcher.outage.failures >= 4, "four failed ticks in a row")
            delays = [dispatcher.outage.policy.delay(n) for n in range(4)]
            assert delays == [0.01, 0.02, 0.04, 0.05]  # the loop's policy: grows, capped
            store.down = False
            await until(lambda: dispatcher.outage.failures == 0, "a tick that succeeds")
            store.down = True
            await until(lambda: dispatcher.outage.failures >= 1, "the next outage")
            assert dispatcher.outage.failures < 4  # counted from one again

    asyncio.run(run())
