"""Times as the CLI reads them (`--since`, `--until`) and shows them."""

from __future__ import annotations

from datetime import datetime

import click
import pytest

from wasmlet.cli.times import TimeSyntaxError, local_iso, parse_when, when_option

NOW = 1_800_000_000.0


def at_now() -> float:
    return NOW


@pytest.mark.parametrize(
    ("text", "seconds_ago"),
    [
        ("90s", 90),
        ("5m", 300),
        ("2h", 7200),
        ("1d", 86_400),
        ("1w", 604_800),
        ("5 minutes ago", 300),
        ("1 hour ago", 3600),
        ("2 hours", 7200),
        ("30 sec ago", 30),
        ("1.5h", 5400),
        (" 5M ", 300),
        ("now", 0),
    ],
)
def test_relative_times(text: str, seconds_ago: float) -> None:
    assert parse_when(text, at_now) == NOW - seconds_ago


def test_absolute_times() -> None:
    assert parse_when("1700000000", at_now) == 1_700_000_000.0
    assert parse_when("2026-01-02T03:04:05Z", at_now) == 1_767_323_045.0
    assert parse_when("2026-01-02T04:04:05+01:00", at_now) == 1_767_323_045.0
    local = datetime(2026, 1, 2, 3, 4, 5).astimezone().timestamp()
    assert parse_when("2026-01-02T03:04:05", at_now) == local  # no zone: local time


@pytest.mark.parametrize(
    "text",
    ["", "yesterday", "5x", "5 parsecs ago", "-5m", "ago", "5m5", "nan", "inf", "-1", "x" * 200],
)
def test_garbage_is_refused_with_what_is_accepted(text: str) -> None:
    with pytest.raises(TimeSyntaxError, match=r"not a time: give a relative time \(90s, 5m"):
        parse_when(text, at_now)


def test_when_option_is_a_usage_error_naming_the_option() -> None:
    assert when_option(None, "--since") is None
    assert float(when_option("1700000000", "--since") or "") == 1_700_000_000.0
    with pytest.raises(click.BadParameter) as caught:
        when_option("soon", "--until")
    assert caught.value.param_hint == "--until"


def test_local_iso_shows_local_time_with_its_offset() -> None:
    shown = local_iso(1_767_323_045.0)
    expected = datetime.fromtimestamp(1_767_323_045.0).astimezone()
    assert shown == expected.isoformat(timespec="seconds")
    assert local_iso("2026-01-02T03:04:05.000+00:00") == shown
    assert local_iso("2026-01-02T03:04:05Z") == shown
    assert local_iso(None) == "-"
    assert local_iso("not a time") == "not a time"
