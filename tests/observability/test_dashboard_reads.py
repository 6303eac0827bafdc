"""What the dashboard reads from the history, on SQLite and PostgreSQL: a function's
per-minute timeline, one request id across functions, a function's recent rows."""

from __future__ import annotations

from tests.observability.test_history import Clock, entry, writer
from wasmlet.observability.history_views import HistoryReader
from wasmlet.store.base import Store

MINUTE = 60 * 16_666  # an epoch minute's start: 999,960 s


def test_the_timeline_counts_each_minute_and_error_type(store: Store) -> None:
    history = writer(store, Clock())
    # Started 40 s into a minute: a rounding integer cast would put them in the next one.
    history.record(entry("a", at=MINUTE + 40.001))
    history.record(entry("b", at=MINUTE + 40.001, status=500, error_type="function_error"))
    history.record(entry("c", at=MINUTE + 59.001, status=504, error_type="timeout"))
    history.record(entry("d", at=MINUTE + 60.001))
    history.record(entry("e", function="other", at=MINUTE + 30.001))
    history.record(entry("old", at=MINUTE - 3600.0))
    assert history.flush() == 6
    timeline = HistoryReader(store).timeline("f", since=MINUTE - 60)
    assert timeline == [
        {
            "minute": "1970-01-12T13:46:00.000+00:00",
            "invocations": 3,
            "errors": {"function_error": 1, "timeout": 1},
        },
        {"minute": "1970-01-12T13:47:00.000+00:00", "invocations": 1, "errors": {}},
    ]


def test_a_request_id_finds_its_attempts_and_lines_in_any_function(store: Store) -> None:
    history = writer(store, Clock())
    history.record(entry("r1", stderr=b"first try", status=500, error_type="function_error"))
    history.record(entry("r1", function="g", stderr=b"elsewhere"))
    history.record(entry("r2", stderr=b"not this one"))
    assert history.flush() == 3
    found = HistoryReader(store).request("r1")
    assert [(i["function"], i["status"]) for i in found["invocations"]] == [("f", 500), ("g", 200)]
    messages = [(line["function"], line["message"]) for line in found["lines"]]
    assert messages == [
        ("f", "first try"),
        ("f", "500 function_error: boom"),
        ("g", "elsewhere"),
    ]
    assert HistoryReader(store).request("nobody") == {
        "request_id": "nobody",
        "invocations": [],
        "lines": [],
    }


def test_recent_rows_of_one_function_are_bounded(store: Store) -> None:
    history = writer(store, Clock())
    for n in range(5):
        history.record(entry(f"r{n}", at=MINUTE + n))
    history.record(entry("x", function="other", at=MINUTE))
    history.record(entry("early", at=MINUTE - 100))
    assert history.flush() == 7
    reader = HistoryReader(store)
    assert len(reader.recent_of("f", since=MINUTE - 10)) == 5
    assert len(reader.recent_of("f", since=MINUTE - 10, limit=3)) == 3
    assert len(reader.recent_of("f", since=0)) == 6


def test_functions_come_a_page_at_a_time_in_name_order(store: Store) -> None:
    store.migrate()
    meta = {"config": "{}", "triggers": "[]", "now": 1.0}
    store.execute("put_module", key="k", wasm=b"\0asm", now=1.0)
    names = ["b", "a", "d", "c", "e"]
    store.execute_many("insert_function", [{"name": n, "enabled": True, **meta} for n in names])
    store.execute_many(
        "insert_version",
        [
            {"name": n, "version": 1, "module_key": "k", "runtime": "wasm", "size": 4,
             "rolled_back_from": None, **meta}
            for n in names
        ],
    )  # fmt: skip
    pages, after = [], ""
    while True:
        rows = store.fetch_all("list_functions_page", after_name=after, limit=2)
        pages.append([row["name"] for row in rows])
        if len(rows) < 2:
            break
        after = rows[-1]["name"]
    assert pages == [["a", "b"], ["c", "d"], ["e"]]
