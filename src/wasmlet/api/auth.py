"""Who may call what: a service key for management, the anon key for invoking.

Both `Authorization: Bearer <key>` and Supabase's `apikey: <key>` header are read.
"""

from __future__ import annotations

from starlette.requests import Request

from wasmlet.api.keys import ApiKeys
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


def require_service_key(request: Request, keys: ApiKeys) -> None:
    if not any(keys.is_service(key) for key in presented_keys(request)):
        raise Unauthorized("Missing or invalid service key")


def may_invoke(request: Request, keys: ApiKeys) -> bool:
    return any(keys.can_invoke(key) for key in presented_keys(request))
