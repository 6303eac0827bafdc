"""Reading the invocation history: function logs, invocations and per-function stats.

Filters are values (`LogQuery`, `InvocationQuery`); rows become the JSON the API
returns. Times in the API are ISO 8601 UTC; the store keeps epoch seconds.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from wasmlet.errors import InvalidPayload, Problem
from wasmlet.observability.history import SEVERITY
from wasmlet.store.base import Row, Store

NO_CURSOR = 2**62
_SPACED_OFFSET = re.compile(r" (\d\d:?\d\d)$")
LEVEL_ALIASES = {"warning": "warn", "err": "error", "information": "info"}


RECENT_LIMIT = 10_000  # invocations read per function for the live figures


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds")


def parse_time(value: str | None, what: str) -> float | None:
    """Epoch seconds from epoch seconds or an ISO 8601 time (UTC unless it says)."""
    if value is None or value == "":
        return None
    try:
        epoch = float(value)
    except ValueError:
        pass
    else:
        if math.isfinite(epoch):
            return epoch
        raise _bad_query(what, "must be a finite number of seconds")
    try:
        # A "+" left unencoded in a query string arrives as a space.
        text = _SPACED_OFFSET.sub(r"+\1", value.strip()).upper().replace("Z", "+00:00")
        parsed = datetime.fromisoformat(text)
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        return parsed.timestamp()
    except (ValueError, OverflowError) as exc:
        raise _bad_query(what, "must be epoch seconds or an ISO 8601 time") from exc


def min_severity(level: str | None) -> int:
    """The lowest severity a `level` filter lets through (it is a minimum)."""
    if level is None or level == "":
        return 0
    name = LEVEL_ALIASES.get(level.lower(), level.lower())
    if name not in SEVERITY:
        raise _bad_query("level", f"must be one of {', '.join(SEVERITY)}")
    return SEVERITY[name]


def status_range(status: str | None) -> tuple[int, int]:
    """`500` is one status, `5xx` a class; no filter is every status."""
    if status is None or status == "":
        return 0, 999
    text = status.lower()
    if len(text) == 3 and text[0] in "12345" and text[1:] == "xx":
        low = int(text[0]) * 100
        return low, low + 99
    if text.isdigit() and 100 <= int(text) <= 599:
        return int(text), int(text)
    raise _bad_query("status", "must be like 500 or 5xx")


def _bad_query(name: str, problem: str) -> InvalidPayload:
    return InvalidPayload(problems=[Problem(f"query.{name}", f"{name} {problem}")])


@dataclass(frozen=True, slots=True)
class LogQuery:
    since: float | None = None
    until: float | None = None
    min_severity: int = 0
    request_id: str | None = None
    after: int | None = None
    limit: int = 100


@dataclass(frozen=True, slots=True)
class InvocationQuery:
    status: tuple[int, int] = (0, 999)
    error_type: str | None = None
    request_id: str | None = None
    user_id: str | None = None
    before: int | None = None
    limit: int = 100


def _line(row: Row) -> dict[str, Any]:
    return {
        "id": int(row["seq"]),
        "timestamp": iso(float(row["at"])),
        "level": row["level"],
        "source": row["source"],
        "message": row["message"],
        "request_id": row["invocation_id"],
        "attempt": row["attempt"],
    }


def _invocation(row: Row) -> dict[str, Any]:
    error = None
    if row["error_type"] is not None:
        error = {"type": row["error_type"], "message": row["error_message"]}
    return {
        "id": row["id"],
        "function": row["function_name"],
        "version": row["version"],
        "trigger": row["trigger_kind"],
        "attempt": row["attempt"],
        "status": row["status"],
        "error": error,
        "duration_ms": float(row["duration_ms"]),
        "started_at": iso(float(row["started_at"])),
        "log_lines": row["log_lines"],
        "user_id": row["user_id"],
    }


class HistoryReader:
    def __init__(self, store: Store) -> None:
        self._store = store

    def has_history(self, function: str) -> bool:
        return self._store.fetch_one("has_history", function_name=function) is not None

    def logs(self, function: str, query: LogQuery) -> dict[str, Any]:
        """Lines after the cursor `after` (oldest first), else the newest `limit`.

        `cursor` is what to pass as `after` for the next lines (`--follow` polls it).
        """
        params = {
            "function_name": function,
            "min_severity": query.min_severity,
            "since": query.since,
            "until": query.until,
            "request_id": query.request_id,
            "limit": query.limit,
        }
        if query.after is not None:
            rows = self._store.fetch_all("log_lines_after", after=query.after, **params)
        else:
            rows = self._store.fetch_all("newest_log_lines", **params)
        if rows:
            cursor = int(rows[-1]["seq"])
        elif query.after is not None:
            cursor = query.after
        else:
            last = self._store.fetch_one("last_log_seq", function_name=function)
            cursor = int(last["seq"]) if last and last["seq"] is not None else 0
        return {"function": function, "lines": [_line(row) for row in rows], "cursor": cursor}

    def invocations(self, function: str, query: InvocationQuery) -> dict[str, Any]:
        """Newest first; pass `cursor` as `before` for the next (older) page."""
        rows = self._store.fetch_all(
            "list_invocations",
            function_name=function,
            before=query.before if query.before is not None else NO_CURSOR,
            status_min=query.status[0],
            status_max=query.status[1],
            error_type=query.error_type,
            request_id=query.request_id,
            user_id=query.user_id,
            limit=query.limit,
        )
        cursor = int(rows[-1]["seq"]) if len(rows) == query.limit else None
        return {
            "function": function,
            "invocations": [_invocation(row) for row in rows],
            "cursor": cursor,
        }

    def recent(self, since: float) -> list[Row]:
        return self._store.fetch_all("invocations_since", since=since)

    def recent_of(self, function: str, since: float, limit: int = RECENT_LIMIT) -> list[Row]:
        """One function's invocations since `since`, the newest `limit` of them."""
        return self._store.fetch_all(
            "function_invocations_since", function_name=function, since=since, limit=limit
        )

    def timeline(self, function: str, since: float) -> list[dict[str, Any]]:
        """Per minute since `since`: invocations, and errors by type (oldest first).

        Reads one function's kept history at most (its retention count bounds it).
        """
        minutes: dict[int, dict[str, Any]] = {}
        for row in self._store.fetch_all("function_timeline", function_name=function, since=since):
            minute = int(row["minute"])
            entry = minutes.setdefault(
                minute, {"minute": iso(minute * 60.0), "invocations": 0, "errors": {}}
            )
            entry["invocations"] += int(row["n"])
            if row["error_type"] is not None:
                entry["errors"][row["error_type"]] = int(row["n"])
        return [minutes[minute] for minute in sorted(minutes)]

    def request(self, request_id: str, limit: int = 1000) -> dict[str, Any]:
        """One request id's invocations (every attempt) and log lines, across functions."""
        rows = self._store.fetch_all("invocations_by_id", request_id=request_id, limit=limit)
        lines = self._store.fetch_all("log_lines_by_request", request_id=request_id, limit=limit)
        return {
            "request_id": request_id,
            "invocations": [_invocation(row) for row in rows],
            "lines": [{**_line(row), "function": row["function_name"]} for row in lines],
        }


@dataclass
class FunctionStats:
    """One function's figures over a window. An error is a 5xx, as for the alerts."""

    name: str
    durations: list[float] = field(default_factory=list)
    errors: int = 0
    timeouts: int = 0
    memory_limit_hits: int = 0

    @property
    def invocations(self) -> int:
        return len(self.durations)

    def view(self) -> dict[str, Any]:
        ordered = sorted(self.durations)
        n = len(ordered)
        return {
            "name": self.name,
            "invocations": n,
            "errors": self.errors,
            "error_rate": round(self.errors / n, 4) if n else 0.0,
            "timeouts": self.timeouts,
            "memory_limit_hits": self.memory_limit_hits,
            "p50_ms": percentile(ordered, 0.50),
            "p99_ms": percentile(ordered, 0.99),
        }


def percentile(ordered: list[float], q: float) -> float | None:
    """Nearest-rank percentile of sorted values: the smallest value with at least a
    share `q` of the values at or below it; None for no values."""
    if not ordered:
        return None
    rank = max(1, math.ceil(q * len(ordered)))
    return round(ordered[rank - 1], 3)


def summarize(rows: Iterable[Row], names: Iterable[str] = ()) -> dict[str, FunctionStats]:
    """Per-function stats of invocation rows (function_name, status, error_type,
    duration_ms); every name in `names` is listed, with zeros if it has no rows."""
    stats = {name: FunctionStats(name) for name in names}
    for row in rows:
        name = row["function_name"]
        entry = stats.get(name)
        if entry is None:
            entry = stats[name] = FunctionStats(name)
        entry.durations.append(float(row["duration_ms"]))
        status = int(row["status"])
        if status >= 500:
            entry.errors += 1
        if row["error_type"] == "timeout":
            entry.timeouts += 1
        elif row["error_type"] == "memory_limit_exceeded":
            entry.memory_limit_hits += 1
    return stats
