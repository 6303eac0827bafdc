"""PostgreSQL LISTEN kept alive: one loop for every part that waits on a channel.

`listen_forever` connects, LISTENs on one channel, calls `on_connected` (what was
announced while no one listened is lost, so the caller catches up there) and then
`on_notify(payload)` for each notification. A lost connection is logged and retried
after the shared backoff, which starts over once a connection is made. Only
cancellation ends it. The registry's change announcements and the dispatcher's outbox
wake-ups both run on it (each on its own connection: they may be different databases).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable

from wasmlet.backoff import Backoff, Streak
from wasmlet.telemetry.logs import get_logger

CONNECT_TIMEOUT_S = 2
RECONNECT_BACKOFF = Backoff(base_s=1.0, cap_s=5.0, jitter=0.1)


async def listen_forever(
    url: str,
    channel: str,
    *,
    on_notify: Callable[[str], None],
    on_connected: Callable[[], None],
    operation: str,
    backoff: Backoff = RECONNECT_BACKOFF,
    rng: random.Random | None = None,
) -> None:
    import psycopg
    from psycopg import sql

    log = get_logger(operation)
    lost = Streak(backoff, rng)
    while True:
        try:
            async with await psycopg.AsyncConnection.connect(
                url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S
            ) as conn:
                await conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
                lost.succeeded()
                on_connected()
                async for notice in conn.notifies():
                    on_notify(notice.payload)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            delay = lost.failed()
            log.warning(
                "listen connection lost", channel=channel,
                error=f"{type(exc).__name__}: {exc}", backoff_s=round(delay, 3),
            )  # fmt: skip
            await asyncio.sleep(delay)
