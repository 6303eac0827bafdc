"""Schedule triggers: validation, and the schedule rows a function's triggers imply.

A trigger is `{"type": "schedule", "cron": "*/5 * * * *", "timezone": "UTC",
"catch_up": "latest", "catch_up_cap": 100}`: five cron fields, or six with seconds
first; an IANA time zone (daylight saving handled by the zone rules); what to do with
runs missed while no scheduler ran: `none` (skip them), `latest` (run once for the
missed window, the default) or `all` (every one, up to `catch_up_cap`).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

from wasmlet.errors import InvalidTrigger, quoted
from wasmlet.store.base import Store
from wasmlet.validation import field_path

SCHEDULE = "schedule"
CATCH_UP = ("none", "latest", "all")
DEFAULT_CATCH_UP_CAP = 100
MAX_CATCH_UP_CAP = 10_000
HORIZON_YEARS = 10
YEAR_S = 366 * 86_400.0
_FIELDS = frozenset({"type", "cron", "timezone", "catch_up", "catch_up_cap", "handler"})
_CRON_TEXT = re.compile(r"[ 0-9A-Za-z*/,?#-]{1,200}")
_ZONE = re.compile(r"[A-Za-z0-9_+/-]{1,64}")
_HANDLER = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]{0,127}")


def schedule_id(cron: str, timezone: str) -> str:
    return hashlib.sha256(f"{cron}|{timezone}".encode()).hexdigest()[:12]


def validate_schedule(item: dict[str, Any], now: float, where: str = "trigger") -> dict[str, Any]:
    """A schedule trigger, normalized; `now` is when its first run must be in sight."""
    check_fields(item, _FIELDS, where)
    cron = item.get("cron")
    if not isinstance(cron, str) or not _CRON_TEXT.fullmatch(cron):
        raise InvalidTrigger(
            f"Invalid trigger configuration: {where}.cron must be a cron expression "
            "(five fields, or six with seconds first)"
        )
    cron = " ".join(cron.split())
    if len(cron.split()) not in (5, 6):
        raise InvalidTrigger(
            f"Invalid trigger configuration: {where}.cron {quoted(cron)} must have five fields, "
            "or six with seconds first"
        )
    zone = item.get("timezone", "UTC")
    if not isinstance(zone, str) or not _valid_zone(zone):
        raise InvalidTrigger(
            f"Invalid trigger configuration: {where}.timezone {quoted(zone)} is not a known "
            "IANA time zone"
        )
    _check_fires(cron, zone, now, where)
    catch_up = item.get("catch_up", "latest")
    if not isinstance(catch_up, str) or catch_up not in CATCH_UP:
        raise InvalidTrigger(
            f"Invalid trigger configuration: {where}.catch_up must be none, latest or all"
        )
    cap = item.get("catch_up_cap", DEFAULT_CATCH_UP_CAP)
    if not isinstance(cap, int) or isinstance(cap, bool) or not 1 <= cap <= MAX_CATCH_UP_CAP:
        raise InvalidTrigger(
            f"Invalid trigger configuration: {where}.catch_up_cap must be an integer "
            f"1..{MAX_CATCH_UP_CAP}"
        )
    normalized = {
        "type": SCHEDULE, "cron": cron, "timezone": zone, "catch_up": catch_up,
        "catch_up_cap": cap,
    }  # fmt: skip
    if "handler" in item:
        normalized["handler"] = validate_handler(item["handler"], where)
    return normalized


def check_fields(item: dict[str, Any], allowed: frozenset[str] | set[str], where: str) -> None:
    for field in item:
        if field not in allowed:
            raise InvalidTrigger(
                f"Invalid trigger configuration: {field_path(where, field)} is not a known "
                f"field (allowed: {', '.join(sorted(allowed))})"
            )


def validate_handler(raw: object, where: str) -> str:
    if not isinstance(raw, str) or not _HANDLER.fullmatch(raw):
        raise InvalidTrigger(
            f"Invalid trigger configuration: {where}.handler must be the name of an export "
            "(a JavaScript identifier)"
        )
    return raw


def _check_fires(cron: str, zone: str, now: float, where: str) -> None:
    """Refuse a cron that parses but never fires (31 February) or not within the horizon."""
    try:
        first: float | None = next_fire(cron, zone, now, horizon_years=HORIZON_YEARS)
    except (ValueError, KeyError, TypeError, IndexError, OverflowError):
        first = None
    if first is None or first - now > HORIZON_YEARS * YEAR_S:
        raise InvalidTrigger(
            f"Invalid trigger configuration: {where}.cron {quoted(cron)} is not a valid "
            f"cron expression, or never fires within {HORIZON_YEARS} years"
        )


def _valid_zone(zone: str) -> bool:
    if not _ZONE.fullmatch(zone):
        return False
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return False
    return True


def fire_times(cron: str, zone: str, after: float, until: float, limit: int) -> list[float]:
    """Scheduled times in (after, until], oldest first, at most `limit` (the latest ones)."""
    tz = ZoneInfo(zone)
    it = croniter(
        cron, datetime.fromtimestamp(after, tz), second_at_beginning=len(cron.split()) == 6
    )
    times: list[float] = []
    while True:
        moment = it.get_next(datetime).timestamp()
        if moment > until:
            return times
        times.append(moment)
        if len(times) > limit:
            times.pop(0)


def next_fire(cron: str, zone: str, after: float, horizon_years: int = 50) -> float:
    tz = ZoneInfo(zone)
    it = croniter(
        cron,
        datetime.fromtimestamp(after, tz),
        second_at_beginning=len(cron.split()) == 6,
        max_years_between_matches=horizon_years,
    )
    moment: float = it.get_next(datetime).timestamp()
    return moment


class ScheduleBook:
    """The schedule rows of each function, kept in step with its triggers."""

    def __init__(self, store: Store, clock: Callable[[], float]) -> None:
        self._store = store
        self._clock = clock

    def clock(self) -> float:
        return self._clock()

    def sync(self, function: str, triggers: list[dict[str, Any]]) -> None:
        now = self._clock()
        wanted = {
            schedule_id(t["cron"], t["timezone"]): t for t in triggers if t["type"] == SCHEDULE
        }
        with self._store.transaction():
            existing = {
                row["schedule_id"]
                for row in self._store.fetch_all("function_schedules", function_name=function)
            }
            for gone in existing - set(wanted):
                self._store.execute("delete_schedule", function_name=function, schedule_id=gone)
            for sid, trigger in wanted.items():
                self._store.execute(
                    "upsert_schedule",
                    function_name=function,
                    schedule_id=sid,
                    cron=trigger["cron"],
                    timezone=trigger["timezone"],
                    catch_up=trigger["catch_up"],
                    catch_up_cap=trigger["catch_up_cap"],
                    last_run=now,
                    next_run=next_fire(trigger["cron"], trigger["timezone"], now),
                    now=now,
                )

    def listing(self) -> list[dict[str, Any]]:
        return self._store.fetch_all("all_schedules")

    def set_paused(self, function: str, sid: str, paused: bool) -> bool:
        changed = self._store.execute(
            "set_schedule_paused",
            function_name=function,
            schedule_id=sid,
            paused=paused,
            now=self._clock(),
        )
        return changed > 0
