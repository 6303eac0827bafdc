"""Verifying a user's JWT (PyJWT): the claims of a valid token, or why it is not valid.

Algorithms are an allow-list: HS256 with the configured secret (`WASMLET_JWT_SECRET`),
RS256 and ES256 with a key of the configured JWKS. The algorithm named in the token's
header picks the key source, never the other way round: `none` and every other
algorithm are refused, an HS256 token is only ever checked against the secret, and an
RS256/ES256 token only against a JWKS key published for that algorithm.

A valid token is signed, has `exp` in the future (within `leeway_s`), `nbf`/`iat` not in
the future, `aud` naming the configured audience (when one is configured), `iss` equal to
the configured issuer (when one is configured), and `sub`, if present, a short printable
string. A token over `MAX_TOKEN_CHARS` is refused before it is parsed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import jwt
from jwt.exceptions import InvalidIssuedAtError, InvalidJTIError, InvalidSubjectError

from wasmlet.api.jwks import JwksCache, KeysUnavailable

MAX_TOKEN_CHARS = 8192
MAX_SUB_CHARS = 255
MIN_SECRET_BYTES = 32
ALGORITHMS = ("HS256", "RS256", "ES256")
_PRINTABLE = re.compile(r"[^\x00-\x1f\x7f]+")


class TokenRejected(Exception):
    """Why a token is not accepted: `reason` for programs, the message for people."""

    def __init__(self, reason: str, message: str) -> None:
        self.reason = reason
        self.message = message
        super().__init__(message)


@dataclass(frozen=True, slots=True)
class JwtPolicy:
    """What a valid token must satisfy; `audience`/`issuer` None means not checked."""

    audience: str | None = "authenticated"
    issuer: str | None = None
    leeway_s: float = 30.0


class JwtVerifier:
    def __init__(
        self,
        policy: JwtPolicy,
        *,
        secret: str | None = None,
        jwks: JwksCache | None = None,
    ) -> None:
        if secret is not None and len(secret.encode()) < MIN_SECRET_BYTES:
            raise ValueError(f"a JWT secret must be at least {MIN_SECRET_BYTES} bytes")
        self._policy = policy
        self._secret = secret
        self._jwks = jwks

    @property
    def configured(self) -> bool:
        return self._secret is not None or self._jwks is not None

    async def aclose(self) -> None:
        if self._jwks is not None:
            await self._jwks.aclose()

    async def verify(self, token: str) -> dict[str, Any]:
        """The verified claims of `token`; TokenRejected with the reason otherwise."""
        if len(token) > MAX_TOKEN_CHARS:
            raise TokenRejected("too_large", f"the token is over {MAX_TOKEN_CHARS} characters")
        algorithm, kid = _header(token)
        if algorithm == "HS256":
            if self._secret is None:
                raise TokenRejected(
                    "no_verifier", "no verifier is configured for HS256 (WASMLET_JWT_SECRET)"
                )
            return self._decode(token, algorithm, self._secret)
        if self._jwks is None:
            raise TokenRejected(
                "no_verifier",
                f"no verifier is configured for {algorithm} "
                "(WASMLET_JWT_JWKS_URL or WASMLET_JWT_JWKS_FILE)",
            )
        try:
            keys = await self._jwks.keys_for(kid, algorithm)
        except KeysUnavailable as exc:
            raise TokenRejected(
                "keys_unavailable", f"the signing keys cannot be read ({exc})"
            ) from None
        if not keys:
            named = f" with kid {kid!r}" if kid is not None else ""
            raise TokenRejected("unknown_key", f"no {algorithm} key{named} in the JWKS")
        for key in keys[:-1]:  # without a kid, each key of the algorithm is tried
            try:
                return self._decode(token, algorithm, key.key)
            except TokenRejected as rejected:
                if rejected.reason != "bad_signature":
                    raise
        return self._decode(token, algorithm, keys[-1].key)

    def _decode(self, token: str, algorithm: str, key: Any) -> dict[str, Any]:
        policy = self._policy
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=[algorithm],
                audience=policy.audience,
                issuer=policy.issuer,
                leeway=policy.leeway_s,
                options={"require": ["exp"], "verify_aud": policy.audience is not None},
            )
        except jwt.InvalidTokenError as exc:
            raise _rejection(exc) from None
        except jwt.PyJWTError as exc:  # a key PyJWT cannot use for this algorithm
            raise TokenRejected(
                "invalid", f"the key cannot verify it ({type(exc).__name__})"
            ) from None
        sub = claims.get("sub")
        if sub is not None and (
            not isinstance(sub, str) or len(sub) > MAX_SUB_CHARS or not _PRINTABLE.fullmatch(sub)
        ):
            raise TokenRejected(
                "malformed", f"sub must be a printable string of at most {MAX_SUB_CHARS} characters"
            )
        return claims


def _header(token: str) -> tuple[str, str | None]:
    """The algorithm (allow-listed) and key id named by the token's header."""
    if token.count(".") != 2:
        raise TokenRejected("malformed", "the token is not a JWT (three dot-separated parts)")
    try:
        header = jwt.get_unverified_header(token)
    except jwt.InvalidTokenError:
        raise TokenRejected("malformed", "the token's header is not valid JSON") from None
    algorithm = header.get("alg")
    if algorithm not in ALGORITHMS:
        shown = repr(algorithm)[:40]
        raise TokenRejected(
            "algorithm_not_allowed",
            f"algorithm {shown} is not allowed (allowed: {', '.join(ALGORITHMS)})",
        )
    kid = header.get("kid")
    if kid is not None and (not isinstance(kid, str) or len(kid) > 256):
        raise TokenRejected("malformed", "kid must be a string of at most 256 characters")
    return str(algorithm), kid


def _rejection(exc: jwt.InvalidTokenError) -> TokenRejected:
    """The reason for PyJWT's exception (subclasses before their bases)."""
    if isinstance(exc, jwt.ExpiredSignatureError):
        return TokenRejected("expired", "the token has expired")
    if isinstance(exc, jwt.ImmatureSignatureError):
        return TokenRejected("not_yet_valid", "the token is not valid yet (nbf or iat)")
    if isinstance(exc, jwt.InvalidSignatureError):
        return TokenRejected("bad_signature", "the signature does not verify")
    if isinstance(exc, jwt.MissingRequiredClaimError):
        return TokenRejected("missing_claim", f"the token has no {exc.claim} claim")
    if isinstance(exc, jwt.InvalidAudienceError):
        return TokenRejected("wrong_audience", "the token is not for this audience (aud)")
    if isinstance(exc, jwt.InvalidIssuerError):
        return TokenRejected("wrong_issuer", "the token is from another issuer (iss)")
    if isinstance(exc, InvalidSubjectError | InvalidJTIError | InvalidIssuedAtError):
        return TokenRejected("malformed", f"a claim has the wrong type ({exc})")
    if isinstance(exc, jwt.InvalidAlgorithmError):
        return TokenRejected("algorithm_not_allowed", "the algorithm does not match the key")
    if isinstance(exc, jwt.DecodeError):
        return TokenRejected("malformed", "the token cannot be decoded")
    return TokenRejected("invalid", f"the token is not valid ({type(exc).__name__})")
