"""Structured JSON logs (structlog), one line per operation.

Every line has the spec's fields: level, service, operation, timestamp, and where
they apply function, error, duration_ms, user_id and request_id. `redact_secrets`
drops anything that looks like a key before a line is written.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any, TextIO

import structlog

SERVICE = "functions"
_SECRET_FIELDS = frozenset({"authorization", "apikey", "service_key", "anon_key", "key", "env"})


def redact_secrets(
    _logger: object, _method: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    for field in list(event):
        if field.lower() in _SECRET_FIELDS:
            event.pop(field)
    return event


def _uppercase_level(
    _logger: object, _method: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    event["level"] = str(event.get("level", "info")).upper()
    return event


def configure_logging(level: str = "info", stream: TextIO | None = None) -> None:
    """Called once by the app factory; never at import time."""
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            _uppercase_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True, key="timestamp"),
            redact_secrets,
            structlog.processors.EventRenamer("message"),
            structlog.processors.JSONRenderer(sort_keys=False),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[level.upper()]
        ),
        logger_factory=structlog.PrintLoggerFactory(file=stream or sys.stdout),
        cache_logger_on_first_use=False,
    )


def get_logger(operation: str) -> Any:
    return structlog.get_logger().bind(service=SERVICE, operation=operation)
