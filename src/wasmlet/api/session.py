"""Dashboard sessions: a signed, expiring cookie that stands for the service key.

The cookie holds `<expires>.<nonce>.<mac>`, where the MAC is an HMAC-SHA256 under a key
derived from the service key: nothing is stored on the server, any node verifies it,
and changing the service key ends every session. A state-changing request that a
session (not a key) authorizes must also carry the session's CSRF token in the
`x-csrf-token` header: a value derived from the cookie that the dashboard's pages hold
and another site cannot read.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

SESSION_COOKIE = "wasmlet_session"
CSRF_HEADER = "x-csrf-token"
SESSION_TTL_S = 12 * 3600
MAX_COOKIE = 200  # a real cookie is about 70 characters; longer is not ours
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass(frozen=True, slots=True)
class Session:
    cookie: str
    expires_at: int
    csrf_token: str


class Sessions:
    """Issues and checks session cookies for one service key."""

    def __init__(self, service_key: str, ttl_s: int = SESSION_TTL_S) -> None:
        self._key = hmac.new(
            service_key.encode(), b"wasmlet dashboard session v1", hashlib.sha256
        ).digest()
        self.ttl_s = ttl_s

    def issue(self, now: float | None = None) -> Session:
        expires = int(now if now is not None else time.time()) + self.ttl_s
        body = f"{expires}.{secrets.token_urlsafe(18)}"
        return self._session(f"{body}.{self._mac(body)}", expires)

    def verify(self, cookie: str | None, now: float | None = None) -> Session | None:
        """The session the cookie stands for, or None (absent, forged, expired)."""
        if not cookie or len(cookie) > MAX_COOKIE or cookie.count(".") != 2:
            return None
        body, _, mac = cookie.rpartition(".")
        if not hmac.compare_digest(mac, self._mac(body)):
            return None
        expires_text = body.partition(".")[0]
        if not expires_text.isdigit():
            return None
        expires = int(expires_text)
        if expires <= (now if now is not None else time.time()):
            return None
        return self._session(cookie, expires)

    def _session(self, cookie: str, expires: int) -> Session:
        return Session(cookie, expires, self._mac("csrf." + cookie))

    def _mac(self, text: str) -> str:
        return _b64(hmac.new(self._key, text.encode(), hashlib.sha256).digest())
