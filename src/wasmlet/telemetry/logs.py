"""Structured JSON logs (structlog), one line per operation.

Every line has the spec's fields: level, service, operation, timestamp, function,
error, duration_ms, user_id and request_id; `add_spec_fields` sets the ones an
operation has no value for to null, so every line parses to the same shape. A
`Redactor` drops secret fields (at any depth) and masks secrets inside text before a
line is written.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any, TextIO

import structlog

SERVICE = "functions"
SPEC_FIELDS = ("function", "error", "duration_ms", "user_id", "request_id")
REDACTED = "[redacted]"
_SECRET_FIELDS = frozenset(
    {
        "authorization", "apikey", "api_key", "service_key", "anon_key", "key", "keys",
        "env", "secret", "secrets", "password", "passwd", "token", "access_token",
        "refresh_token", "cookie", "set_cookie", "database_url", "app_database_url",
    }
)  # fmt: skip
_BEARER = re.compile(r"(bearer\s+)[^\s\"',;]+", re.IGNORECASE)
_URL_PASSWORD = re.compile(r"(\b[a-z][a-z0-9+.-]*://[^\s:/@]*:)[^\s@/]+@", re.IGNORECASE)
MIN_SECRET_LENGTH = 8
_PLAIN = frozenset({type(None), bool, int, float})  # nothing to mask in these
FIELD_VERDICTS_KEPT = 4096
_FIELD_VERDICTS: dict[str, bool] = {}  # field name -> secret or not, the first 4096 seen


def add_spec_fields(
    _logger: object, _method: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """The spec's fields on every line: null where an operation has no value."""
    event.setdefault("service", SERVICE)
    event.setdefault("operation", None)
    for field in SPEC_FIELDS:
        event.setdefault(field, None)
    return event


class Redactor:
    """Keys and secrets never reach a log line.

    Fields named like a secret (`authorization`, `apikey`, `env`, `password`, ...) are
    dropped wherever they are, nested dicts included. In text, bearer tokens and URL
    passwords are masked, and so is every value registered with `add` (the API keys).
    """

    def __init__(self) -> None:
        self._values: tuple[str, ...] = ()
        self._suspect = _suspect_pattern(())

    def add(self, *values: str | None) -> None:
        known = {*self._values, *(v for v in values if v and len(v) >= MIN_SECRET_LENGTH)}
        self._values = tuple(sorted(known, key=len, reverse=True))
        self._suspect = _suspect_pattern(self._values)

    def __call__(
        self, _logger: object, _method: str, event: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        for field in list(event):
            if _is_secret_field(field):
                del event[field]
                continue
            value = event[field]
            kind = type(value)
            if kind is str:
                event[field] = self.scrub(value)
            elif kind not in _PLAIN:
                event[field] = self._clean(value)
        return event

    def _clean(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.scrub(value)
        if isinstance(value, dict):
            return {k: self._clean(v) for k, v in value.items() if not _is_secret_field(k)}
        if isinstance(value, list | tuple):
            return [self._clean(v) for v in value]
        return value

    def scrub(self, text: str) -> str:
        if self._suspect.search(text) is None:  # one scan: most text has nothing to mask
            return text
        if "://" in text:
            text = _URL_PASSWORD.sub(rf"\g<1>{REDACTED}@", text)
        text = _BEARER.sub(rf"\g<1>{REDACTED}", text)
        for secret in self._values:
            if secret in text:
                text = text.replace(secret, REDACTED)
        return text


def _suspect_pattern(values: tuple[str, ...]) -> re.Pattern[str]:
    """Matches wherever `scrub` might mask something (a superset: a hit costs the full
    scrub, a miss proves there is nothing to mask)."""
    return re.compile("|".join((r"(?i:bearer\s)", "://", *(re.escape(v) for v in values))))


def _is_secret_field(field: object) -> bool:
    if not isinstance(field, str):
        return False
    known = _FIELD_VERDICTS.get(field)
    if known is None:
        known = field.lower().replace("-", "_") in _SECRET_FIELDS
        if len(_FIELD_VERDICTS) < FIELD_VERDICTS_KEPT:  # bounded: nested keys can be anything
            _FIELD_VERDICTS[field] = known
    return known


def redact_secrets(
    logger: object, method: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """A `Redactor` that knows no key values: secret fields and tokens only."""
    return Redactor()(logger, method, event)


def _uppercase_level(
    _logger: object, _method: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    event["level"] = str(event.get("level", "info")).upper()
    return event


def configure_logging(
    level: str = "info", stream: TextIO | None = None, log_format: str = "json"
) -> Redactor:
    """Called once by the app factory; never at import time. The returned redactor
    learns the API keys once they are loaded (`Redactor.add`). `log_format` is `json`,
    `console` (human-readable lines, coloured on a TTY) or `auto` (console on a TTY)."""
    redactor = Redactor()
    out = stream or sys.stdout
    tty = out.isatty()
    console = log_format == "console" or (log_format == "auto" and tty)
    renderer: Any = (
        structlog.dev.ConsoleRenderer(colors=tty, sort_keys=False)
        if console
        else structlog.processors.JSONRenderer(sort_keys=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            _uppercase_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True, key="timestamp"),
            add_spec_fields,
            redactor,
            *(() if console else (structlog.processors.EventRenamer("message"),)),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[level.upper()]
        ),
        logger_factory=structlog.WriteLoggerFactory(file=out),
        cache_logger_on_first_use=False,
    )
    return redactor


def get_logger(operation: str) -> Any:
    return structlog.get_logger().bind(service=SERVICE, operation=operation)
