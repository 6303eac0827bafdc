"""Dashboard session cookies: issued, verified, and refused when forged or expired."""

from __future__ import annotations

from wasmlet.api.session import Sessions

NOW = 1_800_000_000.0


def test_a_session_verifies_until_it_expires() -> None:
    sessions = Sessions("sk_one", ttl_s=60)
    session = sessions.issue(now=NOW)
    assert sessions.verify(session.cookie, now=NOW + 59) == session
    assert sessions.verify(session.cookie, now=NOW + 60) is None
    assert session.csrf_token and session.csrf_token not in session.cookie


def test_forged_or_foreign_cookies_are_refused() -> None:
    sessions = Sessions("sk_one", ttl_s=60)
    cookie = sessions.issue(now=NOW).cookie
    expires, nonce, mac = cookie.split(".")
    assert Sessions("sk_two").verify(cookie, now=NOW) is None  # the key changed
    later = f"{int(expires) + 3600}.{nonce}.{mac}"
    assert sessions.verify(later, now=NOW) is None  # a longer life is not signed
    for bad in ("", "x", "a.b", "a.b.c.d", f"{expires}.{nonce}.", "9" * 300, f"-1.{nonce}.{mac}"):
        assert sessions.verify(bad, now=NOW) is None, bad


def test_each_session_has_its_own_csrf_token() -> None:
    sessions = Sessions("sk_one")
    first, second = sessions.issue(now=NOW), sessions.issue(now=NOW)
    assert first.cookie != second.cookie
    assert first.csrf_token != second.csrf_token
