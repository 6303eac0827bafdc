"""The log pipeline itself (pure units): every line has the spec's fields, and secrets
never reach a line, whatever field or nesting they come in."""

from __future__ import annotations

import io
import json
from datetime import datetime
from typing import Any

import pytest

from wasmlet.telemetry.logs import REDACTED, Redactor, configure_logging, get_logger

SPEC_FIELDS = {
    "level", "service", "operation", "function", "error", "duration_ms", "user_id",
    "request_id", "timestamp",
}  # fmt: skip
SERVICE_KEY = "sk_0123456789abcdefghijklmnop"


@pytest.fixture
def lines() -> Any:
    stream = io.StringIO()
    redactor = configure_logging("debug", stream=stream)
    redactor.add(SERVICE_KEY, "short", None)

    def read() -> list[dict[str, Any]]:
        return [json.loads(line) for line in stream.getvalue().splitlines()]

    yield read
    configure_logging()


def test_a_line_with_no_spec_values_still_has_every_spec_field(lines: Any) -> None:
    get_logger("worker").info("worker started", pid=12)
    (line,) = lines()
    assert set(line) >= SPEC_FIELDS
    assert line["operation"] == "worker" and line["service"] == "functions"
    assert line["level"] == "INFO"
    for field in ("function", "error", "duration_ms", "user_id", "request_id"):
        assert line[field] is None
    assert datetime.fromisoformat(line["timestamp"].replace("Z", "+00:00")).tzinfo is not None
    assert line["pid"] == 12 and line["message"] == "worker started"


def test_given_values_are_kept(lines: Any) -> None:
    get_logger("invoke").error(
        "invocation failed", function="f", error="504 Function timeout after 10s",
        duration_ms=10000.5, request_id="r-1",
    )  # fmt: skip
    (line,) = lines()
    assert line["function"] == "f" and line["duration_ms"] == 10000.5
    assert line["error"] == "504 Function timeout after 10s" and line["request_id"] == "r-1"
    assert line["level"] == "ERROR"


def test_secret_fields_are_dropped_at_any_depth(lines: Any) -> None:
    get_logger("http").warning(
        "request",
        authorization="Bearer abc",
        apikey="k",
        env={"TOKEN": "x"},
        headers={"Authorization": "Bearer abc", "Set-Cookie": "s=1", "accept": "*/*"},
        calls=[{"password": "p", "ok": 1}],
        database_url="postgresql://u:p@h/db",
    )
    (line,) = lines()
    for field in ("authorization", "apikey", "env", "database_url"):
        assert field not in line
    assert line["headers"] == {"accept": "*/*"}
    assert line["calls"] == [{"ok": 1}]


def test_secrets_inside_text_are_masked(lines: Any) -> None:
    get_logger("invoke").error(
        f"called with {SERVICE_KEY}",
        error=f"401 bad key: Authorization: Bearer tok.en-1 and apikey {SERVICE_KEY}",
        detail="connect to postgresql://wasmlet:hunter2@db:5432/app failed",
        stderr="short is too short to be a secret",
    )
    raw = lines()
    text = json.dumps(raw)
    assert SERVICE_KEY not in text and "tok.en-1" not in text and "hunter2" not in text
    (line,) = raw
    assert line["message"] == f"called with {REDACTED}"
    assert line["error"] == f"401 bad key: Authorization: Bearer {REDACTED} and apikey {REDACTED}"
    assert line["detail"] == f"connect to postgresql://wasmlet:{REDACTED}@db:5432/app failed"
    assert line["stderr"] == "short is too short to be a secret"


def test_redactor_prefers_the_longest_secret() -> None:
    redactor = Redactor()
    redactor.add("abcdefgh", "abcdefgh-longer")
    assert redactor.scrub("x abcdefgh-longer y") == f"x {REDACTED} y"


def test_the_redactor_masks_what_its_quick_check_lets_through() -> None:
    """`scrub` first looks for anything maskable in one scan; that scan must not miss
    a secret with regex characters, one added later, a BEARER in capitals or a tab."""
    redactor = Redactor()
    assert redactor.scrub("BEARER\tabc.def") == f"BEARER\t{REDACTED}"
    redactor.add("a+b*c(d)e?")
    assert redactor.scrub("x a+b*c(d)e? y") == f"x {REDACTED} y"
    redactor.add("later-secret-1")
    assert redactor.scrub("k=later-secret-1") == f"k={REDACTED}"
    assert redactor.scrub("nothing to see") == "nothing to see"
