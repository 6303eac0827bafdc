"""cancel_and_wait: the one way a part's close ends the loops it started."""

from __future__ import annotations

import asyncio

import pytest

from wasmlet.tasks import cancel_and_wait


def test_cancels_every_task_and_waits_until_each_has_ended() -> None:
    ended: list[str] = []

    async def loop(name: str) -> None:
        try:
            await asyncio.sleep(3600)
        finally:
            await asyncio.sleep(0.01)  # clean-up that itself awaits: waited for too
            ended.append(name)

    async def main() -> list[asyncio.Task[None]]:
        tasks = [asyncio.create_task(loop(n)) for n in ("a", "b")]
        await asyncio.sleep(0)
        await cancel_and_wait(tasks[0], None, tasks[1])
        return tasks

    tasks = asyncio.run(main())
    assert sorted(ended) == ["a", "b"]
    assert all(task.cancelled() for task in tasks)


def test_nothing_to_cancel_is_fine() -> None:
    asyncio.run(cancel_and_wait())
    asyncio.run(cancel_and_wait(None))


def test_a_task_that_failed_has_its_failure_raised_after_all_ended() -> None:
    others_ended = []

    async def broken() -> None:
        raise RuntimeError("the loop broke")

    async def other() -> None:
        try:
            await asyncio.sleep(3600)
        finally:
            others_ended.append(True)

    async def main() -> None:
        failed = asyncio.create_task(broken())
        running = asyncio.create_task(other())
        await asyncio.sleep(0.01)
        await cancel_and_wait(failed, running)

    with pytest.raises(RuntimeError, match="the loop broke"):
        asyncio.run(main())
    assert others_ended == [True]


def test_a_cancel_of_the_caller_is_not_swallowed() -> None:
    async def stubborn() -> None:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            await asyncio.sleep(3600)  # slow to end: the caller is cancelled meanwhile

    async def main() -> bool:
        task = asyncio.create_task(stubborn())
        await asyncio.sleep(0)
        closing = asyncio.create_task(cancel_and_wait(task))
        await asyncio.sleep(0.01)
        closing.cancel()
        try:
            await closing
        except asyncio.CancelledError:
            return True
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        return False

    assert asyncio.run(main()) is True
