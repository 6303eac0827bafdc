"""Function logs, invocation history and live stats (service key).

GET /functions/v1/functions/{name}/logs         lines, newest `limit` or after a cursor
GET /functions/v1/functions/{name}/invocations  invocations, newest first
GET /functions/v1/stats                         per function figures over the last minutes
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool

from wasmlet.api.auth import require_service_key
from wasmlet.api.openapi import errors
from wasmlet.api.routes.deps import services_of
from wasmlet.api.services import Services
from wasmlet.errors import FunctionNotFound, InvalidPayload, NotFound, quoted
from wasmlet.observability.history import SEVERITY
from wasmlet.observability.history_views import (
    LEVEL_ALIASES,
    NO_CURSOR,
    InvocationQuery,
    LogQuery,
    iso,
    min_severity,
    parse_time,
    status_range,
    summarize,
)

router = APIRouter(tags=["observability"])
MAX_CURSOR = NO_CURSOR
MAX_STATS_PAGE = 200
MAX_NAME = 128
MAX_REQUEST_ID = 200
_TIME: dict[str, Any] = {
    "anyOf": [
        {"type": "string", "format": "date-time"},
        {"type": "string", "pattern": r"^-?[0-9]{1,12}(\.[0-9]{1,6})?$"},
    ]
}


async def _known(services: Services, name: str) -> None:
    """A deployed function, or one whose history is still kept (deleted since)."""

    def known() -> bool:
        found = services.registry.find(name) is not None
        return found or services.history_reader.has_history(name)

    if not await run_in_threadpool(known):
        raise FunctionNotFound(f"Function not found: {name}", function=name)


@router.get("/functions/v1/functions/{name}/logs", responses=errors(400, 401, 404))
async def function_logs(
    request: Request,
    name: str,
    since: str | None = Query(
        None, description="epoch seconds or ISO 8601, inclusive", json_schema_extra=_TIME
    ),
    until: str | None = Query(
        None, description="epoch seconds or ISO 8601, exclusive", json_schema_extra=_TIME
    ),
    level: str | None = Query(
        None,
        description="minimum level: debug, info, warn, error",
        json_schema_extra={"enum": [*SEVERITY, *LEVEL_ALIASES]},
    ),
    request_id: str | None = Query(None, description="one invocation's lines"),
    after: int | None = Query(
        None, ge=0, le=MAX_CURSOR, description="cursor: lines after this one"
    ),
    limit: int = Query(100, ge=1, le=1000),
) -> dict[str, Any]:
    """What the function wrote (stderr, `log` host calls) and platform error lines.

    Without `after`: the newest `limit` lines that match, oldest first. With it: the
    lines after that cursor, oldest first. Pass the answer's `cursor` as `after` to
    get only newer lines (`wasmlet logs --follow` does).
    """
    services = services_of(request)
    require_service_key(request, services.keys)
    query = LogQuery(
        since=parse_time(since, "since"),
        until=parse_time(until, "until"),
        min_severity=min_severity(level),
        request_id=request_id or None,
        after=after,
        limit=limit,
    )
    await _known(services, name)
    return await run_in_threadpool(services.history_reader.logs, name, query)


@router.get("/functions/v1/functions/{name}/invocations", responses=errors(400, 401, 404))
async def function_invocations(
    request: Request,
    name: str,
    status: str | None = Query(
        None,
        description="a status (500) or a class (5xx)",
        json_schema_extra={"pattern": r"^([1-5][0-9]{2}|[1-5][xX]{2})?$"},
    ),
    error_type: str | None = None,
    request_id: str | None = None,
    user_id: str | None = Query(None, description="only this user's (a JWT's sub)"),
    before: int | None = Query(
        None, ge=0, le=MAX_CURSOR, description="cursor from the previous page"
    ),
    limit: int = Query(100, ge=1, le=1000),
) -> dict[str, Any]:
    """Invocations, newest first: sync and async, refused ones too, with their outcome
    and the user each was for (`user_id`, the verified JWT's `sub`; null without one)."""
    services = services_of(request)
    require_service_key(request, services.keys)
    query = InvocationQuery(
        status=status_range(status),
        error_type=error_type or None,
        request_id=request_id or None,
        user_id=user_id or None,
        before=before,
        limit=limit,
    )
    await _known(services, name)
    return await run_in_threadpool(services.history_reader.invocations, name, query)


@router.get("/functions/v1/stats", responses=errors(400, 401))
async def stats(
    request: Request,
    minutes: float = Query(5.0, gt=0, le=24 * 60),
    limit: int | None = Query(
        None, ge=1, le=MAX_STATS_PAGE, description="functions per page (absent: all of them)"
    ),
    after: str = Query("", max_length=MAX_NAME, description="cursor: functions after this name"),
) -> dict[str, Any]:
    """Per function over the last `minutes`: invocations, errors (5xx), error rate,
    timeouts, memory limit hits, p50/p99 duration (nearest rank) and breaker state;
    and the server's workers, in-flight invocations and queue. `wasmlet top` shows it.

    With `limit`: one page of deployed functions in name order, each with its version and
    trigger kinds, and `next_after` to pass as `after` for the next page (null: no more).
    A page reads only its own functions' history, so it stays fast with many functions.
    """
    services = services_of(request)
    require_service_key(request, services.keys)
    now = time.time()
    since = now - minutes * 60
    page: dict[str, Any] = {}
    if limit is None:
        rows = await run_in_threadpool(services.history_reader.recent, since)
        records = await run_in_threadpool(services.registry.list)
        figures = summarize(rows, (record.name for record in records))
        ordered = sorted(figures.values(), key=lambda e: (-e.invocations, e.name))
        functions = [_figures(services, entry.view()) for entry in ordered]
    else:
        records = await run_in_threadpool(services.registry.page, after, limit)
        functions = []
        for record in records:
            rows = await run_in_threadpool(services.history_reader.recent_of, record.name, since)
            view = summarize(rows, [record.name])[record.name].view()
            view["version"] = record.version
            view["enabled"] = record.enabled
            view["triggers"] = sorted({str(t.get("type", "?")) for t in record.triggers})
            functions.append(_figures(services, view))
        page["next_after"] = records[-1].name if len(records) == limit else None
    snapshot = await services.store_gauges.refresh()
    pool = services.pool
    in_flight = services.metrics.registry.get_sample_value("functions_in_flight") or 0.0
    return {
        "generated_at": iso(now),
        "window_s": round(minutes * 60, 3),
        "history": services.history is not None,
        "server": {
            "workers": {"alive": pool.alive, "size": pool.size, "busy": pool.busy},
            "in_flight": int(in_flight),
            "queue": snapshot.queue(),
            "oldest_queued_age_s": snapshot.oldest_due_age_s,
        },
        "functions": functions,
        **page,
    }


def _figures(services: Services, view: dict[str, Any]) -> dict[str, Any]:
    view["circuit_breaker"] = services.invoker.breakers.view(view["name"])["state"]
    return view


@router.get("/functions/v1/functions/{name}/timeline", responses=errors(400, 401, 404))
async def function_timeline(
    request: Request, name: str, minutes: int = Query(180, ge=1, le=24 * 60)
) -> dict[str, Any]:
    """Per minute over the last `minutes`, oldest first: invocations, and errors by type
    (minutes with no invocation are left out)."""
    services = services_of(request)
    require_service_key(request, services.keys)
    await _known(services, name)
    now = time.time()
    since = now - minutes * 60
    buckets = await run_in_threadpool(services.history_reader.timeline, name, since)
    return {"function": name, "since": iso(since), "until": iso(now), "minutes": buckets}


@router.get("/functions/v1/requests/{request_id}", responses=errors(400, 401, 404))
async def find_request(request: Request, request_id: str) -> dict[str, Any]:
    """One request id (the `request_id` of any error body or log line): its invocations,
    every attempt, with their functions, and their log lines."""
    services = services_of(request)
    require_service_key(request, services.keys)
    if not 1 <= len(request_id) <= MAX_REQUEST_ID:
        raise InvalidPayload(f"A request id is 1 to {MAX_REQUEST_ID} characters")
    found = await run_in_threadpool(services.history_reader.request, request_id)
    if not found["invocations"] and not found["lines"]:
        raise NotFound(f"No invocation with request id {quoted(request_id, 80)}")
    return found
