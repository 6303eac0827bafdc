"""The history writer and reader against the real store (SQLite and PostgreSQL), with a
clock the test drives: lines, order, retention by count and age, filters, stats."""

from __future__ import annotations

import pytest

from wasmlet.errors import FunctionTimeout, UserCodeError
from wasmlet.observability.history import HistoryWriter, InvocationEntry, Retention
from wasmlet.observability.history_views import (
    HistoryReader,
    InvocationQuery,
    LogQuery,
    percentile,
    status_range,
    summarize,
)
from wasmlet.runtime.outcome import LogLevel, Outcome, OutcomeKind
from wasmlet.store.base import Store


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def entry(
    invocation_id: str, function: str = "f", *, at: float = 1_000_000.0, status: int = 200,
    stderr: bytes = b"", logs: tuple[tuple[str, str], ...] = (), error_type: str | None = None,
    duration_ms: float = 1.0,
) -> InvocationEntry:  # fmt: skip
    return InvocationEntry(
        id=invocation_id, function=function, version=1, trigger="http", attempt=1,
        status=status, error_type=error_type, error_message="boom" if error_type else None,
        duration_ms=duration_ms, started_at=at - duration_ms / 1000, ended_at=at,
        stderr=stderr, logs=logs,
    )  # fmt: skip


def writer(store: Store, clock: Clock, **retention: float) -> HistoryWriter:
    store.migrate()
    return HistoryWriter(store, Retention(**retention), clock=clock)  # type: ignore[arg-type]


def messages(store: Store, function: str = "f", **query: object) -> list[str]:
    page = HistoryReader(store).logs(function, LogQuery(limit=1000, **query))  # type: ignore[arg-type]
    return [line["message"] for line in page["lines"]]


def test_lines_are_log_calls_then_stderr_then_the_platform_error() -> None:
    failed = InvocationEntry.ended_now(
        "r1",
        "f",
        3,
        "database",
        2,
        500,
        0.25,
        UserCodeError("Function error: trap"),
        Outcome(
            OutcomeKind.TRAP,
            stderr=b"first\r\n\n  second  \nthird",
            logs=[(LogLevel.WARN, "careful"), (LogLevel.DEBUG, "detail")],
        ),
    )
    assert failed.log_lines() == [
        ("warn", "log", "careful"),
        ("debug", "log", "detail"),
        ("info", "stderr", "first"),
        ("info", "stderr", "  second"),
        ("info", "stderr", "third"),
        ("error", "platform", "500 function_error: Function error: trap"),
    ]
    assert failed.duration_ms == 250.0 and failed.attempt == 2 and failed.trigger == "database"
    assert failed.ended_at - failed.started_at == pytest.approx(0.25)
    timeout = InvocationEntry.ended_now(
        "r2", "f", 1, "http", 1, 504, 1.0, FunctionTimeout("Function timeout after 1s")
    )
    assert timeout.log_lines() == [("error", "platform", "504 timeout: Function timeout after 1s")]
    assert entry("r3", status=429, error_type="too_many_requests").log_lines() == []


def test_written_rows_read_back_with_filters_and_cursor(store: Store) -> None:
    clock = Clock()
    history = writer(store, clock)
    history.record(entry("a", stderr=b"a1\na2", at=clock.now))
    history.record(
        entry(
            "b",
            status=500,
            error_type="function_error",
            logs=(("warn", "b-warn"),),
            at=clock.now + 5,
        )
    )
    history.record(entry("c", function="other", stderr=b"c1"))
    assert history.flush() == 3
    assert messages(store) == ["a1", "a2", "b-warn", "500 function_error: boom"]
    assert messages(store, request_id="b") == ["b-warn", "500 function_error: boom"]
    assert messages(store, min_severity=30) == ["b-warn", "500 function_error: boom"]
    assert messages(store, since=clock.now + 1) == ["b-warn", "500 function_error: boom"]
    assert messages(store, until=clock.now + 1) == ["a1", "a2"]
    reader = HistoryReader(store)
    newest = reader.logs("f", LogQuery(limit=2))
    assert [line["message"] for line in newest["lines"]] == ["b-warn", "500 function_error: boom"]
    first = reader.logs("f", LogQuery(after=0, limit=2))
    assert [line["message"] for line in first["lines"]] == ["a1", "a2"]
    rest = reader.logs("f", LogQuery(after=first["cursor"], limit=10))
    assert [line["message"] for line in rest["lines"]] == ["b-warn", "500 function_error: boom"]
    assert reader.logs("f", LogQuery(after=rest["cursor"]))["lines"] == []
    assert reader.logs("f", LogQuery(after=rest["cursor"]))["cursor"] == rest["cursor"]

    page = reader.invocations("f", InvocationQuery())
    assert [i["id"] for i in page["invocations"]] == ["b", "a"]
    b = page["invocations"][0]
    assert b["error"] == {"type": "function_error", "message": "boom"}
    assert (b["status"], b["log_lines"], b["trigger"], b["version"]) == (500, 2, "http", 1)
    failed = reader.invocations("f", InvocationQuery(status=status_range("5xx")))
    assert [i["id"] for i in failed["invocations"]] == ["b"]
    assert reader.invocations("f", InvocationQuery(error_type="timeout"))["invocations"] == []
    one = reader.invocations("f", InvocationQuery(limit=1))
    older = reader.invocations("f", InvocationQuery(limit=1, before=one["cursor"]))
    assert [i["id"] for i in older["invocations"]] == ["a"]
    assert reader.has_history("other") and not reader.has_history("nobody")


def test_count_retention_keeps_the_newest_lines_and_invocations(store: Store) -> None:
    clock = Clock()
    history = writer(store, clock, log_lines=5, invocations=3)
    for n in range(4):
        history.record(entry(f"r{n}", stderr=f"{n}-a\n{n}-b\n{n}-c".encode()))
        history.record(entry(f"x{n}", function="other", stderr=b"kept"))
        history.flush()
    assert messages(store) == ["2-a", "2-b", "2-c", "3-a", "3-b", "3-c"][-5:]
    assert len(messages(store, "other")) == 4  # 4 lines: under its bound of 5
    page = HistoryReader(store).invocations("f", InvocationQuery())
    assert [i["id"] for i in page["invocations"]] == ["r3", "r2", "r1"]


def test_count_retention_is_enforced_every_tenth_of_the_bound(store: Store) -> None:
    clock = Clock()
    history = writer(store, clock, log_lines=20, invocations=1000)
    for n in range(21):
        history.record(entry(f"r{n}", stderr=f"line {n}".encode()))
        history.flush()
        # The bound is enforced after every 2 new lines: never more than 20 + 1 kept.
        assert len(messages(store)) <= 21
    assert messages(store)[-1] == "line 20"
    history.prune_ages()  # the timer enforces whatever is owed
    assert messages(store) == [f"line {n}" for n in range(1, 21)]


def test_age_retention_drops_what_is_older_on_the_timer(store: Store) -> None:
    clock = Clock()
    history = writer(store, clock, log_age_s=60, invocation_age_s=120, prune_interval_s=10)
    history.record(entry("old", stderr=b"old line", at=clock.now))
    history.flush()
    clock.now += 90
    history.record(entry("new", stderr=b"new line", at=clock.now))
    history.flush()  # the timer is due (90 s > 10 s): the old line is over 60 s old
    assert messages(store) == ["new line"]
    ids = [i["id"] for i in HistoryReader(store).invocations("f", InvocationQuery())["invocations"]]
    assert ids == ["new", "old"]  # invocations are kept 120 s
    clock.now += 60
    history.flush()
    ids = [i["id"] for i in HistoryReader(store).invocations("f", InvocationQuery())["invocations"]]
    assert ids == ["new"]


def test_text_the_store_cannot_hold_is_cleaned(store: Store) -> None:
    history = writer(store, Clock())
    history.record(entry("nul", stderr=b"a\x00b\xff"))
    assert history.flush() == 1
    assert messages(store) == ["a\ufffdb\ufffd"]


def test_a_full_queue_drops_new_entries_and_counts_them(store: Store) -> None:
    dropped: list[int] = []
    store.migrate()
    history = HistoryWriter(
        store, Retention(), clock=Clock(), on_drop=dropped.append, queue_limit=2
    )
    for n in range(5):
        history.record(entry(f"r{n}"))
    assert dropped == [1, 1, 1]
    assert history.flush() == 2


def test_stats_are_per_function_with_nearest_rank_percentiles() -> None:
    rows = [
        {"function_name": "f", "status": 200, "error_type": None, "duration_ms": float(ms)}
        for ms in range(1, 98)
    ]
    rows += [
        {"function_name": "f", "status": 504, "error_type": "timeout", "duration_ms": 1000.0},
        {"function_name": "f", "status": 507, "error_type": "memory_limit_exceeded",
         "duration_ms": 99.0},
        {"function_name": "f", "status": 429, "error_type": "too_many_requests",
         "duration_ms": 0.0},
    ]  # fmt: skip
    stats = summarize(rows, ["idle"])
    view = stats["f"].view()
    assert view == {
        "name": "f", "invocations": 100, "errors": 2, "error_rate": 0.02, "timeouts": 1,
        "memory_limit_hits": 1, "p50_ms": 49.0, "p99_ms": 99.0,
    }  # fmt: skip
    assert stats["idle"].view()["p50_ms"] is None and stats["idle"].view()["invocations"] == 0
    assert percentile([5.0], 0.99) == 5.0
    assert percentile([1.0, 2.0], 0.5) == 1.0
