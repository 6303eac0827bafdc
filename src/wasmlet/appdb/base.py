"""The application database interface and its result and error values."""

from __future__ import annotations

import base64
import datetime
import decimal
import hashlib
import json
import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

TRIGGER_PREFIX = "_wasmlet_"
MAX_SQL_BYTES = 100_000
"""The longest statement a function may send, on both backends (`too_large` past it)."""
EVENTS = ("INSERT", "UPDATE", "DELETE")


class QueryErrorType(StrEnum):
    QUERY_ERROR = "query_error"
    DB_UNAVAILABLE = "db_unavailable"
    TIMEOUT = "timeout"
    TOO_LARGE = "too_large"
    FORBIDDEN = "forbidden"


class QueryError(Exception):
    def __init__(self, error_type: QueryErrorType, message: str) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.message = message

    def to_json(self) -> bytes:
        return json.dumps({"error": {"type": self.error_type, "message": self.message}}).encode()


@dataclass(frozen=True, slots=True)
class OutboxEvent:
    seq: int
    event_id: str
    function_name: str
    op: str
    schema_name: str
    table_name: str
    record: Any
    old_record: Any
    created_at: float
    row_key: str | None = None  # the changed row (table and primary key); None: no order

    def payload(self) -> dict[str, Any]:
        """Shaped like Supabase's database webhooks, plus the id for idempotency."""
        return {
            "id": self.event_id,
            "type": self.op,
            "table": self.table_name,
            "schema": self.schema_name,
            "record": self.record,
            "old_record": self.old_record,
            "committed_at": self.created_at,
        }


@dataclass(frozen=True, slots=True)
class TableRef:
    schema: str
    table: str


class AppDatabase(ABC):
    dialect: str
    default_schema: str

    @abstractmethod
    def query(self, sql: str, params: list[Any], deadline: float, max_bytes: int) -> bytes:
        """Run one statement and commit; the result JSON, or raise QueryError."""

    @abstractmethod
    def table_exists(self, ref: TableRef) -> bool: ...

    @abstractmethod
    def install_trigger(self, function: str, ref: TableRef, events: list[str]) -> None: ...

    @abstractmethod
    def replace_triggers(self, function: str, wanted: list[tuple[TableRef, list[str]]]) -> None:
        """Drop `function`'s capture triggers and create `wanted`, in one transaction:
        on failure the triggers it had are still there, and none of the new ones."""

    @abstractmethod
    def drop_triggers(self, function: str) -> int:
        """Drop every capture trigger of `function`; how many there were."""

    @abstractmethod
    def trigger_names(self) -> list[str]:
        """Every capture trigger installed, for checks and tests."""

    @abstractmethod
    def fetch_outbox(self, limit: int) -> list[OutboxEvent]: ...

    @abstractmethod
    def delete_outbox(self, seqs: list[int]) -> None: ...

    @abstractmethod
    def close(self) -> None: ...


def check_sql_size(sql: str) -> None:
    if len(sql.encode()) > MAX_SQL_BYTES:
        raise QueryError(QueryErrorType.TOO_LARGE, f"statement over {MAX_SQL_BYTES} bytes")


def collect_rows(cursor: Iterable[tuple[Any, ...]], max_bytes: int) -> list[tuple[Any, ...]]:
    """The rows, refused as soon as they certainly encode to more than `max_bytes`.

    A value's raw size never exceeds its JSON (bytes grow to base64), so the running sum
    stops a huge result after at most `max_bytes` plus one row held in memory.
    """
    rows: list[tuple[Any, ...]] = []
    size = 0
    for row in cursor:
        size += sum(len(v) if isinstance(v, str | bytes) else 1 for v in row) + len(row)
        if size > max_bytes:
            raise QueryError(QueryErrorType.TOO_LARGE, f"result over {max_bytes} bytes")
        rows.append(row)
    return rows


def row_count(rowcount: int, rows: list[tuple[Any, ...]]) -> int:
    """The affected count of INSERT/UPDATE/DELETE (with RETURNING too), else the rows returned.

    `rowcount` is the DB-API cursor's: -1 where the driver has no count (SQLite's SELECT, DDL).
    """
    return rowcount if rowcount >= 0 else len(rows)


def encode_rows(
    columns: list[str], rows: list[tuple[Any, ...]], count: int, max_bytes: int
) -> bytes:
    body = json.dumps(
        {"rows": [dict(zip(columns, row, strict=True)) for row in rows], "row_count": count},
        default=_json_default,
    ).encode()
    if len(body) > max_bytes:
        raise QueryError(QueryErrorType.TOO_LARGE, f"result over {max_bytes} bytes")
    return body


def _json_default(value: object) -> object:
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode()
    if isinstance(value, datetime.datetime | datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, decimal.Decimal | uuid.UUID):
        return str(value)
    raise TypeError(f"cannot encode {type(value).__name__}")


def trigger_name(function: str, ref: TableRef) -> str:
    """Short and unique per (function, table): PostgreSQL cuts names at 63 bytes."""
    fn = hashlib.sha256(function.encode()).hexdigest()[:12]
    table = hashlib.sha256(f"{ref.schema}.{ref.table}".encode()).hexdigest()[:12]
    return f"{TRIGGER_PREFIX}{fn}_{table}"


def function_trigger_prefix(function: str) -> str:
    return f"{TRIGGER_PREFIX}{hashlib.sha256(function.encode()).hexdigest()[:12]}_"
