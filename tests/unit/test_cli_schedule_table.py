from __future__ import annotations

from wasmlet.cli.schedule_table import schedule_table
from wasmlet.cli.times import local_iso


def _schedule(**overrides: object) -> dict[str, object]:
    base: dict[str, object] = {
        "function": "nightly", "id": "s1", "cron": "0 3 * * *", "timezone": "Europe/Paris",
        "paused": False, "last_run": None, "next_run": 1_800_000_000.0, "last_outcome": None,
    }  # fmt: skip
    return {**base, **overrides}


def test_columns_are_labelled_and_a_schedule_never_run_has_no_last_run() -> None:
    lines = schedule_table({"scheduler": {"healthy": True}, "schedules": [_schedule()]})
    assert lines[0] == "scheduler healthy"
    header, row = lines[1].split(), lines[2]
    assert header[:2] == ["FUNCTION", "ID"] and "OUTCOME" in header
    assert row.split()[:5] == ["nightly", "s1", "0", "3", "*"]
    assert "active" in row.split()
    last_column = lines[1].index("LAST RUN")
    assert row[last_column:].split()[0] == "-"  # not run yet
    assert local_iso(1_800_000_000.0) in row


def test_a_paused_schedule_with_a_run_shows_its_time_and_outcome() -> None:
    ran = _schedule(paused=True, last_run=1_700_000_000.0, last_outcome={"status": "done"})
    lines = schedule_table({"scheduler": {"healthy": False}, "schedules": [ran]})
    assert lines[0] == "scheduler UNHEALTHY"
    assert "paused" in lines[2].split()
    assert local_iso(1_700_000_000.0) in lines[2] and lines[2].endswith("done")


def test_no_schedules_says_so() -> None:
    lines = schedule_table({"scheduler": {"healthy": True}, "schedules": []})
    assert lines == ["scheduler healthy", "no schedules"]
