"""The public keys that sign user JWTs: a JWKS from a URL and/or a file, cached.

Keys are read at the first token that needs them, then again once `refresh_s` has
passed, and when a token names a key id the cache does not hold (a rotation); never more
than once every `min_refetch_s`, so a stream of tokens with made-up key ids (or a JWKS
URL that is down) costs one fetch per `min_refetch_s`, not one per request. A read that
fails keeps the keys already held.

Only asymmetric keys are kept (RSA and EC): a symmetric (`oct`) key in a JWKS is
ignored, so an HS256 token is never checked against a key published for anyone to read.
A document is refused over `MAX_JWKS_BYTES` or with more than `MAX_KEYS` keys.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from jwt import PyJWK, PyJWKSet
from jwt.exceptions import PyJWKError, PyJWKSetError

from wasmlet.telemetry.logs import get_logger

MAX_JWKS_BYTES = 256 * 1024
MAX_KEYS = 64
FETCH_TIMEOUT_S = 5.0
MIN_REFETCH_S = 10.0
ASYMMETRIC = frozenset({"RSA", "EC"})


class KeysUnavailable(Exception):
    """No key set could be read (the URL is down or the document is not a JWKS)."""


class JwksCache:
    def __init__(
        self,
        *,
        url: str | None = None,
        file: Path | None = None,
        refresh_s: float = 300.0,
        min_refetch_s: float = MIN_REFETCH_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if url is None and file is None:
            raise ValueError("a JWKS needs a URL or a file")
        self._url = url
        self._file = file
        self._refresh_s = refresh_s
        self._min_refetch_s = min_refetch_s
        self._clock = clock
        self._keys: list[PyJWK] = []
        self._loaded_at: float | None = None
        self._tried_at: float | None = None
        self._error: str | None = None
        self._lock = asyncio.Lock()
        self._client = httpx.AsyncClient(timeout=FETCH_TIMEOUT_S, follow_redirects=False)
        self._log = get_logger("jwks")

    async def keys_for(self, kid: str | None, algorithm: str) -> list[PyJWK]:
        """The held keys for `algorithm` with id `kid` (any id when None), reading the
        set first when it is due; KeysUnavailable when no set could ever be read."""
        now = self._clock()
        stale = self._loaded_at is None or now - self._loaded_at >= self._refresh_s
        if stale and self._may_refetch():
            await self._refresh()
        found = self._matching(kid, algorithm)
        if not found and kid is not None and self._may_refetch():
            await self._refresh()  # a key id not held: perhaps the keys were rotated
            found = self._matching(kid, algorithm)
        if not self._keys:
            raise KeysUnavailable(self._error or "no JWKS was read")
        return found

    async def aclose(self) -> None:
        await self._client.aclose()

    def _matching(self, kid: str | None, algorithm: str) -> list[PyJWK]:
        return [
            key
            for key in self._keys
            if key.algorithm_name == algorithm and (kid is None or key.key_id == kid)
        ]

    def _may_refetch(self) -> bool:
        return self._tried_at is None or self._clock() - self._tried_at >= self._min_refetch_s

    async def _refresh(self) -> None:
        """Read the set once, even when many requests ask at the same moment."""
        tried_before = self._tried_at
        async with self._lock:
            if self._tried_at != tried_before:
                return  # another request read it while this one waited
            self._tried_at = self._clock()
            try:
                keys = await self._read()
            except KeysUnavailable as exc:
                self._error = str(exc)
                self._log.warning("JWKS read failed", error=self._error, keys_kept=len(self._keys))
                return
            self._keys, self._error = keys, None
            self._loaded_at = self._clock()

    async def _read(self) -> list[PyJWK]:
        keys: list[PyJWK] = []
        if self._file is not None:
            keys.extend(_parse(await asyncio.to_thread(_read_file, self._file), str(self._file)))
        if self._url is not None:
            keys.extend(_parse(await self._fetch(self._url), self._url))
        return keys

    async def _fetch(self, url: str) -> bytes:
        try:
            async with self._client.stream("GET", url) as response:
                if response.status_code != 200:
                    raise KeysUnavailable(f"JWKS {url} answered {response.status_code}")
                body = bytearray()
                async for chunk in response.aiter_bytes():
                    body.extend(chunk)
                    if len(body) > MAX_JWKS_BYTES:
                        raise KeysUnavailable(f"JWKS {url} is over {MAX_JWKS_BYTES} bytes")
                return bytes(body)
        except httpx.HTTPError as exc:
            raise KeysUnavailable(f"JWKS {url} cannot be fetched: {type(exc).__name__}") from exc


def _read_file(path: Path) -> bytes:
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_JWKS_BYTES + 1)
    except OSError as exc:
        raise KeysUnavailable(f"JWKS file {path} cannot be read: {exc.strerror}") from exc
    if len(data) > MAX_JWKS_BYTES:
        raise KeysUnavailable(f"JWKS file {path} is over {MAX_JWKS_BYTES} bytes")
    return data


def _parse(data: bytes, source: str) -> list[PyJWK]:
    """The asymmetric keys of a JWKS document."""
    try:
        document: Any = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise KeysUnavailable(f"JWKS {source} is not JSON") from exc
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise KeysUnavailable(f'JWKS {source} has no "keys" list')
    entries = document["keys"]
    if len(entries) > MAX_KEYS:
        raise KeysUnavailable(f"JWKS {source} has more than {MAX_KEYS} keys")
    wanted = [k for k in entries if isinstance(k, dict) and k.get("kty") in ASYMMETRIC]
    if not wanted:
        raise KeysUnavailable(f"JWKS {source} holds no RSA or EC key")
    try:
        return list(PyJWKSet.from_dict({"keys": wanted}).keys)
    except (PyJWKSetError, PyJWKError) as exc:
        raise KeysUnavailable(f"JWKS {source}: {exc}") from exc
