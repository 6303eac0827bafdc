"""Ending background tasks: the one way a part's `close` stops the loops it started.

`cancel_and_wait(*tasks)` cancels every task given (None is skipped), then waits until
each has ended, so nothing of the part runs once its close returns. A task that ended
with its own failure (not a cancel) has that failure raised here, after every task has
ended: a loop that broke is not hidden by the shutdown. A cancel of the caller itself
is not swallowed: it propagates, as any await's does.
"""

from __future__ import annotations

import asyncio
from typing import Any

__all__ = ["cancel_and_wait"]


async def cancel_and_wait(*tasks: asyncio.Task[Any] | None) -> None:
    """Cancel the tasks and wait for all of them to end; raise the first one's failure."""
    live = [task for task in tasks if task is not None]
    for task in live:
        task.cancel()
    if not live:
        return
    await asyncio.wait(live)
    failures = [task.exception() for task in live if not task.cancelled()]
    for failure in failures:
        if failure is not None:
            raise failure
