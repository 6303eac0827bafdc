"""The JWT verifier and the JWKS cache, alone: every reason a token is refused, the
algorithm allow-list, and a JWKS read from a file and from a real HTTP server."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import jwt
import pytest

from tests.support.users import (
    HS_SECRET,
    claims,
    ec_key,
    hs256,
    jwks_server,
    rsa_key,
    signed,
    unsigned,
)
from wasmlet.api.jwks import JwksCache
from wasmlet.api.jwt_verifier import MAX_TOKEN_CHARS, JwtPolicy, JwtVerifier, TokenRejected
from wasmlet.api.keys import ApiKeys
from wasmlet.api.users import (
    CLAIMS_HEADER,
    USER_ID_HEADER,
    Identity,
    guest_headers,
    identify,
)
from wasmlet.errors import Unauthorized

T = TypeVar("T")
POLICY = JwtPolicy(audience="authenticated", issuer=None, leeway_s=5)


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coroutine)


def reason(verifier: JwtVerifier, token: str) -> str:
    with pytest.raises(TokenRejected) as refused:
        run(verifier.verify(token))
    return refused.value.reason


def test_a_valid_hs256_token_gives_its_claims() -> None:
    verifier = JwtVerifier(POLICY, secret=HS_SECRET)
    got = run(verifier.verify(hs256(claims("user-42", role="authenticated"))))
    assert got["sub"] == "user-42" and got["role"] == "authenticated"


@pytest.mark.parametrize(
    ("token", "expected"),
    [
        (hs256(claims(expires_in=-60)), "expired"),
        (hs256(claims(), secret="another-secret-0123456789abcdef-0123"), "bad_signature"),
        (hs256({**claims(), "aud": "someone-else"}), "wrong_audience"),
        (hs256({k: v for k, v in claims().items() if k != "aud"}), "missing_claim"),
        (hs256({k: v for k, v in claims().items() if k != "exp"}), "missing_claim"),
        (hs256({**claims(), "nbf": 2**31}), "not_yet_valid"),
        (hs256(claims(sub="bad\nsub")), "malformed"),
        (hs256({**claims(), "sub": 42}), "malformed"),
        (unsigned(claims()), "algorithm_not_allowed"),
        (jwt.encode(claims(), HS_SECRET * 2, algorithm="HS512"), "algorithm_not_allowed"),
        ("not-a-jwt", "malformed"),
        ("a.b.c", "malformed"),
        ("x" * (MAX_TOKEN_CHARS + 1), "too_large"),
    ],
    ids=[
        "expired", "bad-signature", "wrong-audience", "no-aud", "no-exp", "nbf-future",
        "sub-newline", "sub-number", "alg-none", "hs512", "not-jwt", "garbage-parts",
        "too-large",
    ],
)  # fmt: skip
def test_each_bad_token_is_refused_with_its_reason(token: str, expected: str) -> None:
    assert reason(JwtVerifier(POLICY, secret=HS_SECRET), token) == expected


def test_a_token_expired_within_the_leeway_still_passes() -> None:
    verifier = JwtVerifier(POLICY, secret=HS_SECRET)
    assert run(verifier.verify(hs256(claims(expires_in=-2))))["sub"] == "user-1"


def test_issuer_is_checked_when_configured() -> None:
    verifier = JwtVerifier(JwtPolicy(issuer="https://auth.example/"), secret=HS_SECRET)
    good = hs256(claims(iss="https://auth.example/"))
    assert run(verifier.verify(good))["iss"] == "https://auth.example/"
    assert reason(verifier, hs256(claims(iss="https://other.example/"))) == "wrong_issuer"


def test_audience_is_not_checked_when_none_is_configured() -> None:
    verifier = JwtVerifier(JwtPolicy(audience=None), secret=HS_SECRET)
    assert run(verifier.verify(hs256({**claims(), "aud": "anything"})))["aud"] == "anything"


def test_without_a_verifier_every_token_is_refused_as_unverifiable() -> None:
    verifier = JwtVerifier(POLICY)
    assert not verifier.configured
    assert reason(verifier, hs256(claims())) == "no_verifier"
    assert reason(verifier, signed(rsa_key(), claims())) == "no_verifier"


def test_a_short_secret_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 32 bytes"):
        JwtVerifier(POLICY, secret="short")


def test_rs256_and_es256_verify_against_a_jwks_file(tmp_path: Path) -> None:
    rsa, ec = rsa_key(), ec_key()
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps({"keys": [rsa.public_jwk, ec.public_jwk]}))
    verifier = JwtVerifier(POLICY, jwks=JwksCache(file=path))
    assert run(verifier.verify(signed(rsa, claims("rsa-user"))))["sub"] == "rsa-user"
    assert run(verifier.verify(signed(ec, claims("ec-user"))))["sub"] == "ec-user"
    # No kid: every key of the algorithm is tried.
    assert run(verifier.verify(signed(ec, claims("no-kid"), kid=None)))["sub"] == "no-kid"
    # Signed by a key the JWKS does not publish, under a published kid.
    assert reason(verifier, signed(rsa_key(rsa.kid), claims())) == "bad_signature"
    assert reason(verifier, signed(rsa_key("unknown"), claims())) == "unknown_key"


def test_hs256_is_never_checked_against_a_published_key(tmp_path: Path) -> None:
    """A token signed with HMAC over the public key's bytes (the classic algorithm
    confusion) is refused: HS256 uses the configured secret only."""
    rsa = rsa_key()
    path = tmp_path / "jwks.json"
    published = "secret-published-in-the-jwks-0123456789"
    oct_key = {
        "kty": "oct",
        "kid": "sym",
        "k": jwt.utils.base64url_encode(published.encode()).decode(),
    }
    path.write_text(json.dumps({"keys": [rsa.public_jwk, oct_key]}))
    verifier = JwtVerifier(POLICY, jwks=JwksCache(file=path))
    forged = jwt.encode(claims(), published, algorithm="HS256", headers={"kid": "sym"})
    assert reason(verifier, forged) == "no_verifier"
    # RS256 named in the header with an EC-signed body: no RSA key verifies it.
    ec = ec_key(rsa.kid)
    header = jwt.utils.base64url_encode(b'{"alg":"RS256","kid":"rsa-1"}').decode()
    body_sig = signed(ec, claims()).split(".", 1)[1]
    assert reason(verifier, f"{header}.{body_sig}") == "bad_signature"


def test_jwks_from_http_is_cached_and_refetched_boundedly_for_unknown_kids() -> None:
    first, second = rsa_key("k1"), ec_key("k2")
    with jwks_server(first) as server:
        clock = [1000.0]
        cache = JwksCache(url=server.url, refresh_s=300, min_refetch_s=10, clock=lambda: clock[0])
        verifier = JwtVerifier(POLICY, jwks=cache)

        async def scenario() -> None:
            for _ in range(5):
                assert (await verifier.verify(signed(first, claims())))["sub"] == "user-1"
            assert server.requests == 1
            # A rotation: the new key is found by one refetch, once the minimum has passed.
            server.publish(first, second)
            with pytest.raises(TokenRejected):
                await verifier.verify(signed(second, claims()))  # refetched too recently
            assert server.requests == 1
            clock[0] += 11
            assert (await verifier.verify(signed(second, claims())))["sub"] == "user-1"
            assert server.requests == 2
            # Made-up kids cost no fetch within the minimum interval.
            for n in range(20):
                with pytest.raises(TokenRejected):
                    await verifier.verify(signed(rsa_key(f"forged-{n}"), claims()))
            assert server.requests == 2
            # The JWKS goes down: the keys held are kept.
            server.status = 500
            clock[0] += 400
            assert (await verifier.verify(signed(first, claims())))["sub"] == "user-1"
            assert server.requests == 3
            await verifier.aclose()

        run(scenario())


def test_a_jwks_that_never_answered_refuses_as_keys_unavailable() -> None:
    with jwks_server(rsa_key()) as server:
        server.status = 503
        verifier = JwtVerifier(POLICY, jwks=JwksCache(url=server.url))
        assert reason(verifier, signed(rsa_key(), claims())) == "keys_unavailable"
        run(verifier.aclose())


KEYS = ApiKeys(service="sk_service_key_value", anon="ak_anon_key_value")


def test_identify_keys_and_tokens() -> None:
    verifier = JwtVerifier(POLICY, secret=HS_SECRET)
    token = hs256(claims("user-7", email="a@b.c"))

    def who(authorization: str | None, verify_jwt: bool = True) -> Identity:
        return run(identify(authorization, KEYS, verifier, verify_jwt=verify_jwt))

    assert who(None) == Identity()
    assert who(f"Bearer {KEYS.anon}") == Identity()
    assert who(f"Bearer {KEYS.service}") == Identity()
    assert who(f"Bearer {token}").user_id == "user-7"
    assert who(f"bearer {token}").claims is not None
    assert who(f"Bearer {token}", verify_jwt=False) == Identity()
    assert who("Bearer junk", verify_jwt=False) == Identity()
    with pytest.raises(Unauthorized, match="Invalid JWT: the token has expired"):
        who(f"Bearer {hs256(claims(expires_in=-120))}")


def test_guest_headers_drop_credentials_and_spoofed_identity() -> None:
    sent = [
        ("authorization", "Bearer x"), ("apikey", "k"), ("cookie", "c"),
        ("x-wasmlet-user-id", "admin"), ("X-Wasmlet-Claims", "{}"), ("x-other", "kept"),
    ]  # fmt: skip
    assert guest_headers(sent, Identity()) == {"x-other": "kept"}
    seen = guest_headers(sent, Identity("user-9", {"sub": "user-9", "aud": "authenticated"}))
    assert seen[USER_ID_HEADER] == "user-9"
    assert json.loads(seen[CLAIMS_HEADER]) == {"aud": "authenticated", "sub": "user-9"}
    anonymous_claims = guest_headers(sent, Identity(None, {"role": "anon"}))
    assert USER_ID_HEADER not in anonymous_claims and CLAIMS_HEADER in anonymous_claims
