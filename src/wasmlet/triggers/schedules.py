"""Schedule triggers: validation, and the schedule rows a function's triggers imply.

A trigger is `{"type": "schedule", "cron": "*/5 * * * *", "timezone": "UTC",
"catch_up": "latest", "catch_up_cap": 100}`: five cron fields, or six with seconds
first; an IANA time zone (daylight saving handled by the zone rules); what to do with
runs missed while no scheduler ran: `none` (skip them), `latest` (run once for the
missed window, the default) or `all` (every one, up to `catch_up_cap`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

from wasmlet.errors import InvalidTrigger
from wasmlet.store.base import Store

SCHEDULE = "schedule"
CATCH_UP = ("none", "latest", "all")
DEFAULT_CATCH_UP_CAP = 100
MAX_CATCH_UP_CAP = 10_000


def schedule_id(cron: str, timezone: str) -> str:
    return hashlib.sha256(f"{cron}|{timezone}".encode()).hexdigest()[:12]


def validate_schedule(item: dict[str, Any]) -> dict[str, Any]:
    unknown = set(item) - {"type", "cron", "timezone", "catch_up", "catch_up_cap", "handler"}
    if unknown:
        raise InvalidTrigger(f"Invalid trigger configuration: unknown fields {sorted(unknown)}")
    cron = item.get("cron")
    if not isinstance(cron, str) or len(cron.split()) not in (5, 6) or not _valid_cron(cron):
        raise InvalidTrigger(f"Invalid trigger configuration: invalid cron expression {cron!r}")
    zone = item.get("timezone", "UTC")
    if not isinstance(zone, str) or not _valid_zone(zone):
        raise InvalidTrigger(f"Invalid trigger configuration: unknown time zone {zone!r}")
    catch_up = item.get("catch_up", "latest")
    if catch_up not in CATCH_UP:
        raise InvalidTrigger("Invalid trigger configuration: catch_up must be none, latest or all")
    cap = item.get("catch_up_cap", DEFAULT_CATCH_UP_CAP)
    if not isinstance(cap, int) or isinstance(cap, bool) or not 1 <= cap <= MAX_CATCH_UP_CAP:
        raise InvalidTrigger(
            f"Invalid trigger configuration: catch_up_cap must be 1..{MAX_CATCH_UP_CAP}"
        )
    normalized = {
        "type": SCHEDULE, "cron": " ".join(cron.split()), "timezone": zone,
        "catch_up": catch_up, "catch_up_cap": cap,
    }  # fmt: skip
    if "handler" in item:
        normalized["handler"] = item["handler"]
    return normalized


def _valid_cron(cron: str) -> bool:
    try:
        croniter(cron, datetime.now(UTC), second_at_beginning=len(cron.split()) == 6)
    except (ValueError, KeyError, TypeError):
        return False
    return True


def _valid_zone(zone: str) -> bool:
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
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


def next_fire(cron: str, zone: str, after: float) -> float:
    tz = ZoneInfo(zone)
    it = croniter(
        cron, datetime.fromtimestamp(after, tz), second_at_beginning=len(cron.split()) == 6
    )
    moment: float = it.get_next(datetime).timestamp()
    return moment


class ScheduleBook:
    """The schedule rows of each function, kept in step with its triggers."""

    def __init__(self, store: Store, clock: Callable[[], float]) -> None:
        self._store = store
        self._clock = clock

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
