"""Times as the CLI takes and shows them.

Taken (`--since`, `--until`): a relative time (`90s`, `5m`, `2h`, `1d`, `1w`, also
`5 minutes ago`, `2 hours`, `now`), an ISO 8601 time (local time unless it names its
zone) or epoch seconds. Shown: local time in ISO 8601 with its offset, to the second.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable
from datetime import datetime

import click

UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}
_UNIT_WORDS = {
    "s": ("s", "sec", "secs", "second", "seconds"),
    "m": ("m", "min", "mins", "minute", "minutes"),
    "h": ("h", "hr", "hrs", "hour", "hours"),
    "d": ("d", "day", "days"),
    "w": ("w", "week", "weeks"),
}
_UNIT_OF = {word: unit for unit, words in _UNIT_WORDS.items() for word in words}
_RELATIVE = re.compile(r"(\d{1,9}(?:\.\d{1,6})?)\s*([a-z]{1,7})(?:\s+ago)?")
MAX_TEXT = 64
ACCEPTED = (
    "a relative time (90s, 5m, 2h, 1d, 1w, '5 minutes ago'), an ISO 8601 time or epoch seconds"
)


class TimeSyntaxError(ValueError):
    """A time the CLI cannot read; the message says what it accepts."""


def parse_when(text: str, now: Callable[[], float] = time.time) -> float:
    """Epoch seconds for `text` (see the module doc); TimeSyntaxError otherwise."""
    raw = text.strip().lower()
    if not raw or len(raw) > MAX_TEXT:
        raise TimeSyntaxError(f"{text[:MAX_TEXT]!r} is not a time: give {ACCEPTED}")
    if raw == "now":
        return now()
    match = _RELATIVE.fullmatch(raw)
    if match and match.group(2) in _UNIT_OF:
        return now() - float(match.group(1)) * UNIT_SECONDS[_UNIT_OF[match.group(2)]]
    try:
        epoch = float(raw)
    except ValueError:
        pass
    else:
        if math.isfinite(epoch) and epoch >= 0:
            return epoch
        raise TimeSyntaxError(f"{text!r} is not a time: give {ACCEPTED}")
    try:
        parsed = datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise TimeSyntaxError(f"{text!r} is not a time: give {ACCEPTED}") from None
    if parsed.tzinfo is None:
        parsed = parsed.astimezone()  # a time without a zone is local, as the user reads it
    return parsed.timestamp()


def when_option(value: str | None, option: str) -> str | None:
    """A `--since`/`--until` value as the server takes it (epoch seconds), or a usage error."""
    if value is None:
        return None
    try:
        return f"{parse_when(value):.3f}"
    except TimeSyntaxError as exc:
        raise click.BadParameter(str(exc), param_hint=option) from None


def local_iso(value: float | str | None) -> str:
    """Epoch seconds or an ISO 8601 time, shown in local time ISO 8601; `-` for none."""
    if value is None or value == "":
        return "-"
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return value
        if parsed.tzinfo is None:
            return value
        return parsed.astimezone().isoformat(timespec="seconds")
    return datetime.fromtimestamp(value).astimezone().isoformat(timespec="seconds")
