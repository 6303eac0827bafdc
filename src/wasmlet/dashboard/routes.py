"""The dashboard's own routes: sign in and out, the page frames, the script and style.

A page without a valid session redirects to the sign-in form; the data a page shows
comes from the API routes, which accept the session cookie as the service key.
"""

from __future__ import annotations

import re
from importlib import resources
from urllib.parse import parse_qs, quote

from fastapi import APIRouter, FastAPI, Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from wasmlet.api.auth import presented_keys, session_of, sessions_for
from wasmlet.api.routes.deps import read_body, services_of
from wasmlet.api.session import SESSION_COOKIE, Session
from wasmlet.dashboard import pages
from wasmlet.errors import NotFound
from wasmlet.telemetry.logs import get_logger

router = APIRouter(include_in_schema=False)
MAX_FORM = 4096
STATIC = {"app.js": "text/javascript; charset=utf-8", "app.css": "text/css; charset=utf-8"}
_NEXT = re.compile(r"/dashboard(/[A-Za-z0-9._~%-]{1,300}){0,3}")
SECURITY_HEADERS = {
    "content-security-policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
    "cache-control": "no-store",
}


def install_dashboard(app: FastAPI) -> None:
    app.include_router(router)


def _html(text: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(text, status_code=status, headers=SECURITY_HEADERS)


def _to_login(request: Request) -> RedirectResponse:
    path = request.url.path
    wanted = f"?next={quote(path, safe='/')}" if _NEXT.fullmatch(path) else ""
    target = "/dashboard/login" + wanted
    return RedirectResponse(target, status_code=303, headers=SECURITY_HEADERS)


def _session(request: Request) -> Session | None:
    return session_of(request, services_of(request).keys)


def _page(request: Request, kind: str, title: str, subject: str = "") -> Response:
    session = _session(request)
    if session is None:
        return _to_login(request)
    return _html(pages.page(kind, title, session.csrf_token, subject))


@router.get("/dashboard")
async def home(request: Request) -> Response:
    if _session(request) is None:
        return _to_login(request)
    return RedirectResponse("/dashboard/functions", status_code=303, headers=SECURITY_HEADERS)


@router.get("/dashboard/login")
async def login_form(request: Request, next: str = "") -> Response:
    if _session(request) is not None:
        return RedirectResponse(_safe_next(next), status_code=303, headers=SECURITY_HEADERS)
    return _html(pages.login(next_path=_safe_next(next)))


@router.post("/dashboard/login")
async def login(request: Request) -> Response:
    """The service key from the form (or a header) opens a session; any other refused."""
    services = services_of(request)
    form = parse_qs((await read_body(request, MAX_FORM)).decode("utf-8", "replace"))
    key = (form.get("key") or [""])[0].strip()
    next_path = _safe_next((form.get("next") or [""])[0])
    candidates = [key, *presented_keys(request)]
    if not any(services.keys.is_service(candidate) for candidate in candidates if candidate):
        get_logger("dashboard").warning("dashboard sign-in refused")
        return _html(pages.login("Invalid service key.", next_path), status=401)
    sessions = sessions_for(services.keys.service)
    session = sessions.issue()
    response = RedirectResponse(next_path, status_code=303, headers=SECURITY_HEADERS)
    response.set_cookie(
        SESSION_COOKIE,
        session.cookie,
        max_age=sessions.ttl_s,
        path="/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    get_logger("dashboard").info("dashboard signed in")
    return response


@router.post("/dashboard/logout")
async def logout(request: Request) -> Response:
    response = RedirectResponse("/dashboard/login", status_code=303, headers=SECURITY_HEADERS)
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
    return response


def _safe_next(candidate: str) -> str:
    """Where to go after signing in: a dashboard path, never another site."""
    if _NEXT.fullmatch(candidate) and candidate not in ("/dashboard/login", "/dashboard/logout"):
        return candidate
    return "/dashboard/functions"


@router.get("/dashboard/functions")
async def functions_page(request: Request) -> Response:
    return _page(request, "functions", "Functions")


@router.get("/dashboard/functions/{name}")
async def function_page(request: Request, name: str) -> Response:
    return _page(request, "function", name[:128], name[:128])


@router.get("/dashboard/failures")
async def failures_page(request: Request) -> Response:
    return _page(request, "failures", "Failures")


@router.get("/dashboard/schedules")
async def schedules_page(request: Request) -> Response:
    return _page(request, "schedules", "Schedules")


@router.get("/dashboard/cluster")
async def cluster_page(request: Request) -> Response:
    return _page(request, "cluster", "Cluster")


@router.get("/dashboard/requests/{request_id}")
async def request_page(request: Request, request_id: str) -> Response:
    return _page(request, "request", "Request " + request_id[:200], request_id[:200])


@router.get("/dashboard/search")
async def search(request: Request, request_id: str = "") -> Response:
    if _session(request) is None:
        return _to_login(request)
    wanted = request_id.strip()[:200]
    if not wanted:
        return RedirectResponse("/dashboard/functions", status_code=303)
    return RedirectResponse(f"/dashboard/requests/{quote(wanted, safe='')}", status_code=303)


_ASSETS: dict[str, bytes] = {}


@router.get("/dashboard/static/{asset}")
async def static(asset: str) -> Response:
    """The script and the style sheet (no data: served without a session)."""
    media_type = STATIC.get(asset)
    if media_type is None:
        raise NotFound(f"No dashboard asset {asset[:60]}")
    if asset not in _ASSETS:
        _ASSETS[asset] = resources.files("wasmlet.dashboard").joinpath("static", asset).read_bytes()
    headers = {**SECURITY_HEADERS, "cache-control": "no-cache"}
    return Response(_ASSETS[asset], media_type=media_type, headers=headers)
