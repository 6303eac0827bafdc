"""Who a request is for: the user of a verified JWT, handed to the function as headers.

Keys say who may call (api/auth.py); a user JWT says for whom. With `verify_jwt` on (the
default), a bearer token in `Authorization` that is not one of the project's keys must
be a valid JWT, else 401; its `sub` becomes the invocation's user id. A request that
carries only keys is anonymous (user id null). With `verify_jwt` off, a token is neither
verified nor trusted: the request is anonymous.

The function sees the user as two request headers, set only by the platform:
`x-wasmlet-user-id` (the `sub`, when the token has one) and `x-wasmlet-claims` (the
verified claims as JSON). Every header a client sends under the `x-wasmlet-` prefix is
dropped, so a caller can never pose as a user.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from wasmlet.api.jwks import JwksCache
from wasmlet.api.jwt_verifier import JwtPolicy, JwtVerifier, TokenRejected
from wasmlet.api.keys import ApiKeys
from wasmlet.errors import Problem, Unauthorized
from wasmlet.settings import Settings

USER_ID_HEADER = "x-wasmlet-user-id"
CLAIMS_HEADER = "x-wasmlet-claims"
RESERVED_PREFIX = "x-wasmlet-"
HIDDEN_HEADERS = frozenset({"authorization", "apikey", "cookie"})


@dataclass(frozen=True, slots=True)
class Identity:
    user_id: str | None = None
    claims: dict[str, Any] | None = None


ANONYMOUS = Identity()


def user_verifier(settings: Settings) -> JwtVerifier:
    """The verifier the settings describe (one that refuses every token when none do)."""
    jwks = None
    if settings.jwt_jwks_url or settings.jwt_jwks_file:
        jwks = JwksCache(
            url=settings.jwt_jwks_url,
            file=settings.jwt_jwks_file,
            refresh_s=settings.jwt_jwks_refresh_s,
        )
    policy = JwtPolicy(
        audience=settings.jwt_audience or None,
        issuer=settings.jwt_issuer or None,
        leeway_s=settings.jwt_leeway_s,
    )
    return JwtVerifier(policy, secret=settings.jwt_secret, jwks=jwks)


def bearer_token(authorization: str | None) -> str | None:
    scheme, _, token = (authorization or "").partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


async def identify(
    authorization: str | None, keys: ApiKeys, verifier: JwtVerifier, *, verify_jwt: bool
) -> Identity:
    """The user a request is for; Unauthorized (with the reason) for a bad token."""
    if not verify_jwt:
        return ANONYMOUS
    token = bearer_token(authorization)
    if token is None or keys.can_invoke(token):
        return ANONYMOUS
    try:
        claims = await verifier.verify(token)
    except TokenRejected as rejected:
        raise Unauthorized(
            f"Invalid JWT: {rejected.message}",
            problems=[Problem("headers.authorization", rejected.message)],
        ) from None
    sub = claims.get("sub")
    return Identity(user_id=sub if isinstance(sub, str) else None, claims=claims)


def guest_headers(headers: Iterable[tuple[str, str]], identity: Identity) -> dict[str, str]:
    """The request headers the function sees: no credentials, nothing a client sent
    under the platform's prefix, and the verified user's headers."""
    seen = {
        name.lower(): value
        for name, value in headers
        if name.lower() not in HIDDEN_HEADERS and not name.lower().startswith(RESERVED_PREFIX)
    }
    if identity.claims is not None:
        if identity.user_id is not None:
            seen[USER_ID_HEADER] = identity.user_id
        seen[CLAIMS_HEADER] = json.dumps(identity.claims, separators=(",", ":"), sort_keys=True)
    return seen
