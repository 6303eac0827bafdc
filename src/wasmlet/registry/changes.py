"""Hearing of other nodes' deploys: PostgreSQL LISTEN on the registry's channel.

Every registry write NOTIFYs the function's name when it commits (`Registry._announce`).
A node that hears it drops its cached entry at once and reads the record and compiles
its module in the background, so the first call after a deploy finds the new version
ready. A notification can be missed (the connection drops, the node is busy
reconnecting): on every (re)connection the whole cache is dropped, and the registry's
one-second TTL covers the rest.
"""

from __future__ import annotations

import asyncio

from wasmlet.errors import FunctionError
from wasmlet.registry.modules import LocalModules
from wasmlet.registry.names import NAME_PATTERN
from wasmlet.registry.registry import Registry
from wasmlet.store.listen import listen_forever
from wasmlet.tasks import cancel_and_wait
from wasmlet.telemetry.logs import get_logger

MAX_PENDING = 1024


class RegistryListener:
    def __init__(self, url: str, channel: str, registry: Registry, modules: LocalModules) -> None:
        self._url = url
        self._channel = channel
        self._registry = registry
        self._modules = modules
        self._pending: set[str] = set()
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._log = get_logger("registry")

    def start(self) -> None:
        self._tasks.append(asyncio.create_task(self._listen(), name="registry-listen"))
        self._tasks.append(asyncio.create_task(self._prepare(), name="registry-prepare"))

    async def close(self) -> None:
        await cancel_and_wait(*self._tasks)

    def heard(self, name: str) -> None:
        """`name` changed on some node: forget it now, prepare its new version soon."""
        if not NAME_PATTERN.fullmatch(name):
            return  # not a name the registry writes: ignore it
        self._registry.forget(name)
        if len(self._pending) < MAX_PENDING:
            self._pending.add(name)
            self._wake.set()

    async def _listen(self) -> None:
        await listen_forever(
            self._url, self._channel, on_notify=self.heard,
            on_connected=self._registry.forget_all,  # what changed while no one listened
            operation="registry",
        )  # fmt: skip

    async def _prepare(self) -> None:
        """Read each announced function and compile its module, one at a time."""
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending:
                name = self._pending.pop()
                try:
                    record = await asyncio.to_thread(self._registry.find, name)
                    if record is not None and record.enabled:
                        await self._modules.ensure(record.module_key)
                except FunctionError as exc:
                    self._log.warning(
                        "could not prepare a changed function", function=name, error=exc.message
                    )
