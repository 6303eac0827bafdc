"""Who may call what: a service key for management, the anon key for invoking.

Both `Authorization: Bearer <key>` and Supabase's `apikey: <key>` header are read. A
dashboard session cookie (`api.session`) stands for the service key; a state-changing
request it authorizes must carry its CSRF token too.
"""

from __future__ import annotations

import functools
import hmac

from starlette.requests import Request

from wasmlet.api.keys import ApiKeys
from wasmlet.api.session import CSRF_HEADER, SAFE_METHODS, SESSION_COOKIE, Session, Sessions
from wasmlet.errors import Unauthorized


def presented_keys(request: Request) -> list[str]:
    keys = []
    authorization = request.headers.get("authorization", "")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        keys.append(token.strip())
    apikey = request.headers.get("apikey")
    if apikey:
        keys.append(apikey.strip())
    return keys


@functools.lru_cache(maxsize=4)
def sessions_for(service_key: str) -> Sessions:
    return Sessions(service_key)


def session_of(request: Request, keys: ApiKeys) -> Session | None:
    """The request's valid dashboard session, if it has one."""
    return sessions_for(keys.service).verify(request.cookies.get(SESSION_COOKIE))


def require_service_key(request: Request, keys: ApiKeys) -> None:
    if any(keys.is_service(key) for key in presented_keys(request)):
        return
    session = session_of(request, keys)
    if session is None:
        raise Unauthorized("Missing or invalid service key")
    if request.method not in SAFE_METHODS:
        token = request.headers.get(CSRF_HEADER, "")
        if not hmac.compare_digest(token.encode(), session.csrf_token.encode()):
            raise Unauthorized(
                f"Missing or invalid CSRF token: a request signed in by the dashboard's "
                f"session must send the page's token in the {CSRF_HEADER} header"
            )


def may_invoke(request: Request, keys: ApiKeys) -> bool:
    return any(keys.can_invoke(key) for key in presented_keys(request))
