"""This node's compiled modules: a cache of the modules stored in the platform database.

The database holds every deployed module's bytes (`modules`, keyed by their SHA-256);
the compiled artifacts in the data directory are only a cache. A key missing from the
cache is fetched and compiled on first use, in the compiler's child process under its
limits, once however many invocations ask for it at the same time: the first starts
the build, the others wait for the same one. A module that cannot be built (gone from
the database, bytes that do not match their key, refused by the compiler) is
`ModuleUnavailable`, and the refusal is remembered for `refusal_ttl_s` so that calls
to it cannot keep a compile process busy.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

from wasmlet.errors import (
    DbUnavailable,
    FunctionError,
    InternalError,
    ModuleUnavailable,
    TooManyRequests,
)
from wasmlet.runtime.compiler import ModuleCompiler, content_key
from wasmlet.store.base import Store
from wasmlet.telemetry.logs import get_logger

Clock = Callable[[], float]
REFUSAL_TTL_S = 30.0


@dataclass(frozen=True, slots=True)
class _Refusal:
    until: float
    message: str


class LocalModules:
    def __init__(
        self,
        store: Store,
        compiler: ModuleCompiler,
        *,
        clock: Clock,
        refusal_ttl_s: float = REFUSAL_TTL_S,
    ) -> None:
        self._store = store
        self._compiler = compiler
        self._clock = clock
        self._refusal_ttl_s = refusal_ttl_s
        self._ready: set[str] = set()
        self._refused: dict[str, _Refusal] = {}
        self._building: dict[str, asyncio.Task[None]] = {}
        self._log = get_logger("modules")

    def path(self, key: str) -> str:
        return str(self._compiler.path_for(key))

    def is_ready(self, key: str) -> bool:
        """Whether the compiled artifact of `key` is on disk (one `stat` per key, then
        remembered: artifacts are never removed while the server runs)."""
        if key in self._ready:
            return True
        if self._compiler.is_cached(key):
            self._ready.add(key)
            return True
        return False

    def refuses(self, key: str) -> bool:
        """Whether building `key` failed here a moment ago (it is not tried again yet)."""
        refusal = self._refused.get(key)
        return refusal is not None and self._clock() < refusal.until

    async def ensure(self, key: str) -> None:
        """Return once `key` is compiled on this node; build it if it is not.

        Raises `ModuleUnavailable`, or `DbUnavailable` when the bytes cannot be fetched.
        Called on the event loop; the build runs in a thread, shared by every caller.
        """
        if self.is_ready(key):
            return
        refusal = self._refused.get(key)
        if refusal is not None:
            if self._clock() < refusal.until:
                raise ModuleUnavailable(refusal.message)
            del self._refused[key]
        task = self._building.get(key)
        if task is None:
            task = asyncio.create_task(asyncio.to_thread(self.build, key), name=f"build-{key}")
            self._building[key] = task
            task.add_done_callback(lambda done: self._built(key, done))
        await asyncio.shield(task)  # a caller that gives up does not stop the build

    def _built(self, key: str, task: asyncio.Task[None]) -> None:
        self._building.pop(key, None)
        if not task.cancelled():
            task.exception()  # retrieved: each waiter raises it, if any still waits

    def build(self, key: str) -> None:
        """Fetch `key`'s bytes and compile them (blocking; one caller per key at a time)."""
        if self.is_ready(key):
            return
        try:
            row = self._store.fetch_one("get_module", key=key)
            if row is None:
                raise ModuleUnavailable("The function's module is no longer stored")
            wasm = bytes(row["wasm"])
            if content_key(wasm) != key:
                raise ModuleUnavailable("The stored module does not match its SHA-256")
            self._compiler.compile(wasm)
        except (DbUnavailable, TooManyRequests) as exc:
            raise _unavailable(exc) from exc  # passing conditions: nothing to remember
        except FunctionError as exc:
            refused = _unavailable(exc)
            self._refused[key] = _Refusal(self._clock() + self._refusal_ttl_s, refused.message)
            self._log.error("stored module does not compile", module_key=key, error=exc.message)
            raise refused from exc
        self._ready.add(key)
        self._log.info("module compiled on first use", module_key=key)


def _unavailable(exc: FunctionError) -> FunctionError:
    if isinstance(exc, DbUnavailable | ModuleUnavailable):
        return exc
    if isinstance(exc, TooManyRequests):
        return ModuleUnavailable("This node is compiling too many modules; retry shortly")
    if isinstance(exc, InternalError):  # the compiler's own failure: the log has it
        return ModuleUnavailable("The function's module cannot be compiled on this node")
    return ModuleUnavailable(f"The function's module cannot be compiled: {exc.message}")
