"""Database triggers: validation, installation of capture triggers, and the relay.

Validates every trigger kind (schedule triggers: `schedules.py`) and installs them.
A database trigger is `{"type": "database", "table": "users", "events": ["INSERT", ...]}`
(`table` may be `schema.table`; `handler` names a JavaScript export). A function's
capture triggers are replaced as a whole, in one transaction on the application
database (`capture`), so a redeploy or a delete leaves none of the old ones behind and
a failure leaves them all; its schedule rows are synced in the caller's store
transaction (`sync_schedules`).
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from wasmlet.appdb.base import EVENTS, AppDatabase, TableRef
from wasmlet.errors import InvalidTrigger, quoted
from wasmlet.triggers.queue import JobQueue, NewJob
from wasmlet.triggers.schedules import (
    SCHEDULE,
    ScheduleBook,
    check_fields,
    validate_handler,
    validate_schedule,
)

DATABASE = "database"
HTTP = "http"


MAX_TRIGGERS = 32
IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
MAX_TABLE_NAME = 127
_FIELDS = {HTTP: {"type", "handler"}, DATABASE: {"type", "table", "events", "handler"}}


class TriggerInstaller:
    def __init__(self, database: AppDatabase, schedules: ScheduleBook | None = None) -> None:
        self._db = database
        self._schedules = schedules

    def validate(self, raw: object) -> list[dict[str, Any]]:
        if raw is None:
            return [{"type": HTTP}]
        if not isinstance(raw, list):
            raise InvalidTrigger("Invalid trigger configuration: triggers must be a list")
        if len(raw) > MAX_TRIGGERS:
            raise InvalidTrigger(
                f"Invalid trigger configuration: at most {MAX_TRIGGERS} triggers per function"
            )
        return [self._validate_one(item, f"triggers[{i}]") for i, item in enumerate(raw)]

    def _validate_one(self, item: object, where: str) -> dict[str, Any]:
        if not isinstance(item, dict):
            raise InvalidTrigger(f"Invalid trigger configuration: {where} must be an object")
        kind = item.get("type")
        if not isinstance(kind, str):
            raise InvalidTrigger(f"Invalid trigger configuration: {where}.type is required")
        if kind == SCHEDULE and self._schedules is not None:
            return validate_schedule(item, self._schedules.clock(), where)
        if kind not in _FIELDS:
            raise InvalidTrigger(
                f"Invalid trigger configuration: {where}.type {quoted(kind)} is not a known "
                f"trigger type (http, database, schedule)"
            )
        check_fields(item, _FIELDS[kind], where)
        normalized: dict[str, Any] = {"type": kind}
        if kind == DATABASE:
            normalized.update(self._validate_database(item, where))
        if "handler" in item:
            normalized["handler"] = validate_handler(item["handler"], where)
        return normalized

    def _validate_database(self, item: dict[str, Any], where: str) -> dict[str, Any]:
        ref = self.table_ref(item.get("table"), where)
        events = item.get("events", list(EVENTS))
        if (
            not isinstance(events, list)
            or not events
            or any(not isinstance(e, str) or e.upper() not in EVENTS for e in events)
        ):
            raise InvalidTrigger(
                f"Invalid trigger configuration: {where}.events must be a non-empty list of "
                "INSERT, UPDATE, DELETE"
            )
        if not self._db.table_exists(ref):
            raise InvalidTrigger(
                f"Invalid trigger configuration: {where}.table: table {ref.schema}.{ref.table} "
                "does not exist"
            )
        return {
            "table": f"{ref.schema}.{ref.table}",
            "events": sorted({e.upper() for e in events}, key=EVENTS.index),
        }

    def table_ref(self, raw: object, where: str = "trigger") -> TableRef:
        if not isinstance(raw, str) or not raw or len(raw) > MAX_TABLE_NAME:
            raise InvalidTrigger(
                f"Invalid trigger configuration: {where}.table must be a table name "
                f"(at most {MAX_TABLE_NAME} characters)"
            )
        schema, _, table = raw.rpartition(".")
        if not all(IDENTIFIER.fullmatch(part) for part in (schema or "x", table)):
            raise InvalidTrigger(
                f"Invalid trigger configuration: {where}.table {quoted(raw)} is not a table "
                "name ([schema.]table: letters, digits and '_', not starting with a digit)"
            )
        return TableRef(schema or self._db.default_schema, table)

    def capture(self, function: str, triggers: list[dict[str, Any]]) -> None:
        """Make `function`'s capture triggers exactly the database ones in `triggers`:
        all or nothing (one transaction on the application database)."""
        wanted = []
        for trigger in triggers:
            if trigger["type"] == DATABASE:
                schema, _, table = trigger["table"].rpartition(".")  # stored normalized
                wanted.append((TableRef(schema, table), list(trigger["events"])))
        self._db.replace_triggers(function, wanted)

    def sync_schedules(self, function: str, triggers: list[dict[str, Any]]) -> None:
        """The schedule rows (platform store; joins the caller's transaction)."""
        if self._schedules is not None:
            self._schedules.sync(function, triggers)


def relay_outbox(database: AppDatabase, queue: JobQueue, batch: int = 500) -> int:
    """Move captured changes into the job queue; how many moved.

    Enqueueing is idempotent (the event id is the job id), so a crash between the
    two steps delivers nothing twice and loses nothing. A change that names its row
    (`row_key`) gives its job an order key (the function and the row) and the outbox's
    sequence number: the jobs of one key run one at a time, in that order.
    """
    if queue.relays_outbox_of(database):
        return queue.relay_outbox(batch)
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
                order_key=order_key(event.function_name, event.row_key),
                order_seq=event.seq if event.row_key is not None else None,
            )
            for event in events
        ]
    )
    database.delete_outbox([event.seq for event in events])
    return len(events)


def order_key(function: str, row_key: str | None) -> str | None:
    """One function's events of one row share this key (a digest: row keys may be long)."""
    if row_key is None:
        return None
    return hashlib.sha256(f"{function}\n{row_key}".encode()).hexdigest()[:32]
