"""Secrets: set, list (names and digests, never values), unset, and the environment
functions see.

Every function sees every secret (Supabase's model). Names follow the rules of a
function's `env` (POSIX names, not `WASMLET_*`). Each node keeps the opened values for
`CACHE_S` seconds; a change made on this node is seen at once, one made on another node
within `CACHE_S`. Every value opened is registered with `on_values` (the log redactor)
before a function can see it.
"""

from __future__ import annotations

import asyncio
import datetime
import time
from collections.abc import Callable, Mapping
from typing import Any

from wasmlet.errors import DbUnavailable, InvalidConfig, NotFound, Problem
from wasmlet.registry.models import ENV_NAME, RESERVED_ENV_PREFIX
from wasmlet.secrets.box import SecretBox
from wasmlet.store import Store

MAX_SECRETS = 128
MAX_SECRETS_BYTES = 64 * 1024
MAX_PUT = MAX_SECRETS
CACHE_S = 1.0


class Secrets:
    def __init__(
        self,
        store: Store,
        box: SecretBox,
        *,
        clock: Callable[[], float] = time.monotonic,
        on_values: Callable[..., None] = lambda *values: None,
    ) -> None:
        self._store = store
        self._box = box
        self._clock = clock
        self._on_values = on_values
        self._cached: dict[str, str] | None = None
        self._cached_at = 0.0
        self._read: asyncio.Task[Mapping[str, str]] | None = None

    def put(self, items: object) -> list[dict[str, Any]]:
        """Set each `{"name", "value"}` (new or replacing); the listing after."""
        pairs = _parse(items)
        merged = {**self.environment(fresh=True), **pairs}
        _check_totals(merged)
        self._on_values(*pairs.values())
        now = time.time()
        with self._store.transaction():
            for name, value in pairs.items():
                self._store.execute(
                    "put_secret",
                    name=name,
                    sealed=self._box.seal(name, value),
                    digest=self._box.digest(value),
                    now=now,
                )
        self._cached = None
        return self.listing()

    def listing(self) -> list[dict[str, Any]]:
        return [
            {"name": row["name"], "digest": row["digest"], "updated_at": _iso(row["updated_at"])}
            for row in self._store.fetch_all("list_secrets")
        ]

    def delete(self, name: str) -> None:
        if self._store.execute("delete_secret", name=name) == 0:
            raise NotFound(f"Secret not found: {name[:128]}")
        self._cached = None

    def cached(self) -> Mapping[str, str] | None:
        """The opened secrets if they are fresh; never touches the database."""
        if self._cached is not None and self._clock() - self._cached_at <= CACHE_S:
            return self._cached
        return None

    async def current(self) -> Mapping[str, str]:
        """`environment` for the event loop: a fresh cache costs no thread, and the
        invocations that find it stale share one read in a thread."""
        hit = self.cached()
        if hit is not None:
            return hit
        if self._read is None:
            self._read = asyncio.create_task(asyncio.to_thread(self.environment))
            self._read.add_done_callback(self._read_done)
        return await asyncio.shield(self._read)

    def _read_done(self, task: asyncio.Task[Mapping[str, str]]) -> None:
        self._read = None
        if not task.cancelled():
            task.exception()  # retrieved: each waiter raises it, if any still waits

    def environment(self, *, fresh: bool = False) -> Mapping[str, str]:
        """Every secret, opened; raises `UndecryptableSecret` under another key. While
        the database is away the last values read are served (DbUnavailable only if
        there are none), and it is asked again after `CACHE_S`."""
        now = self._clock()
        if fresh or self._cached is None or now - self._cached_at > CACHE_S:
            try:
                rows = self._store.fetch_all("sealed_secrets")
            except DbUnavailable:
                if self._cached is None:
                    raise
                self._cached_at = now
                return self._cached
            opened = {
                row["name"]: self._box.open(row["name"], bytes(row["sealed"])) for row in rows
            }
            self._on_values(*opened.values())
            self._cached, self._cached_at = opened, now
        return self._cached


def _parse(items: object) -> dict[str, str]:
    """Values are never quoted back: a refusal names the entry and the rule only."""
    if not isinstance(items, list) or not items:
        raise _invalid("body", 'expected a non-empty JSON list of {"name", "value"}')
    if len(items) > MAX_PUT:
        raise _invalid("body", f"more than {MAX_PUT} secrets in one request")
    pairs: dict[str, str] = {}
    for i, item in enumerate(items):
        where = f"[{i}]"
        if not isinstance(item, dict) or set(item) != {"name", "value"}:
            raise _invalid(where, "expected an object with exactly `name` and `value`")
        name, value = item["name"], item["value"]
        if not isinstance(name, str) or not ENV_NAME.fullmatch(name):
            raise _invalid(
                f"{where}.name",
                "not a valid variable name (letters, digits and '_', not starting with a "
                "digit, at most 128 characters)",
            )
        if name.upper().startswith(RESERVED_ENV_PREFIX):
            raise _invalid(f"{where}.name", "reserved: WASMLET_ variables are the platform's")
        if not isinstance(value, str) or "\0" in value:
            raise _invalid(f"{where}.value", "must be a string without NUL characters")
        pairs[name] = value
    return pairs


def _check_totals(merged: Mapping[str, str]) -> None:
    if len(merged) > MAX_SECRETS:
        raise _invalid("body", f"more than {MAX_SECRETS} secrets in all")
    size = sum(len(k.encode()) + len(v.encode()) + 2 for k, v in merged.items())
    if size > MAX_SECRETS_BYTES:
        raise _invalid("body", f"secrets over {MAX_SECRETS_BYTES} bytes in all")


def _invalid(field: str, problem: str) -> InvalidConfig:
    return InvalidConfig(f"Invalid secrets: {field}: {problem}", problems=[Problem(field, problem)])


def _iso(epoch: float) -> str:
    return datetime.datetime.fromtimestamp(epoch, datetime.UTC).isoformat()
