"""Database triggers: validation, installation of capture triggers, and the relay.

Validates every trigger kind (schedule triggers: `schedules.py`) and installs them.
A database trigger is `{"type": "database", "table": "users", "events": ["INSERT", ...]}`
(`table` may be `schema.table`; `handler` names a JavaScript export). Installing a
function's triggers first drops every capture trigger it had, so a redeploy or a
delete leaves none behind.
"""

from __future__ import annotations

import json
from typing import Any

from wasmlet.appdb.base import EVENTS, AppDatabase, TableRef
from wasmlet.errors import InvalidTrigger
from wasmlet.triggers.queue import JobQueue, NewJob
from wasmlet.triggers.schedules import SCHEDULE, ScheduleBook, validate_schedule

DATABASE = "database"
HTTP = "http"


class TriggerInstaller:
    def __init__(self, database: AppDatabase, schedules: ScheduleBook | None = None) -> None:
        self._db = database
        self._schedules = schedules

    def validate(self, raw: object) -> list[dict[str, Any]]:
        if raw is None:
            return [{"type": HTTP}]
        if not isinstance(raw, list):
            raise InvalidTrigger("Invalid trigger configuration: triggers must be a list")
        return [self._validate_one(item) for item in raw]

    def _validate_one(self, item: object) -> dict[str, Any]:
        if not isinstance(item, dict) or not isinstance(item.get("type"), str):
            raise InvalidTrigger("Invalid trigger configuration: each trigger needs a type")
        kind = item["type"]
        if kind == HTTP:
            return {"type": HTTP}
        if kind == DATABASE:
            return self._validate_database(item)
        if kind == SCHEDULE and self._schedules is not None:
            return validate_schedule(item)
        raise InvalidTrigger(f"Invalid trigger configuration: unknown trigger type {kind!r}")

    def _validate_database(self, item: dict[str, Any]) -> dict[str, Any]:
        unknown = set(item) - {"type", "table", "events", "handler"}
        if unknown:
            raise InvalidTrigger(f"Invalid trigger configuration: unknown fields {sorted(unknown)}")
        ref = self.table_ref(item.get("table"))
        events = item.get("events", list(EVENTS))
        if (
            not isinstance(events, list)
            or not events
            or any(not isinstance(e, str) or e.upper() not in EVENTS for e in events)
        ):
            raise InvalidTrigger(
                "Invalid trigger configuration: events must be a non-empty list of "
                "INSERT, UPDATE, DELETE"
            )
        if not self._db.table_exists(ref):
            raise InvalidTrigger(
                f"Invalid trigger configuration: table {ref.schema}.{ref.table} does not exist"
            )
        handler = item.get("handler")
        if handler is not None and (not isinstance(handler, str) or not handler.isidentifier()):
            raise InvalidTrigger("Invalid trigger configuration: handler must be an identifier")
        normalized: dict[str, Any] = {
            "type": DATABASE,
            "table": f"{ref.schema}.{ref.table}",
            "events": sorted({e.upper() for e in events}, key=EVENTS.index),
        }
        if handler is not None:
            normalized["handler"] = handler
        return normalized

    def table_ref(self, raw: object) -> TableRef:
        if not isinstance(raw, str) or not raw or len(raw) > 127:
            raise InvalidTrigger("Invalid trigger configuration: table must be a table name")
        schema, _, table = raw.rpartition(".")
        if not all(part.replace("_", "a").isalnum() for part in (schema or "x", table)):
            raise InvalidTrigger(f"Invalid trigger configuration: invalid table name {raw!r}")
        return TableRef(schema or self._db.default_schema, table)

    def install(self, function: str, triggers: list[dict[str, Any]]) -> None:
        self._db.drop_triggers(function)
        for trigger in triggers:
            if trigger["type"] == DATABASE:
                self._db.install_trigger(
                    function, self.table_ref(trigger["table"]), trigger["events"]
                )
        if self._schedules is not None:
            self._schedules.sync(function, triggers)

    def remove(self, function: str) -> None:
        self._db.drop_triggers(function)
        if self._schedules is not None:
            self._schedules.sync(function, [])


def relay_outbox(database: AppDatabase, queue: JobQueue, batch: int = 500) -> int:
    """Move captured changes into the job queue; how many moved.

    Enqueueing is idempotent (the event id is the job id), so a crash between the
    two steps delivers nothing twice and loses nothing.
    """
    events = database.fetch_outbox(batch)
    if not events:
        return 0
    queue.enqueue(
        [
            NewJob(
                id=event.event_id,
                function_name=event.function_name,
                trigger_kind=DATABASE,
                payload=json.dumps(event.payload()).encode(),
            )
            for event in events
        ]
    )
    database.delete_outbox([event.seq for event in events])
    return len(events)
