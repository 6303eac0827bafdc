"""`wasmlet schedules list`: the schedules as a table with labelled columns."""

from __future__ import annotations

from typing import Any

from wasmlet.cli.times import local_iso


def schedule_table(listing: dict[str, Any]) -> list[str]:
    """The lines printed: the scheduler's health, then one row per schedule.

    LAST RUN is `-` until a first run (a manual run counts); times are local ISO 8601.
    """
    health = "healthy" if listing["scheduler"]["healthy"] else "UNHEALTHY"
    lines = [f"scheduler {health}"]
    schedules: list[dict[str, Any]] = listing["schedules"]
    if not schedules:
        return [*lines, "no schedules"]
    rows = [
        (
            str(s["function"]),
            str(s["id"]),
            str(s["cron"]),
            str(s["timezone"]),
            "paused" if s["paused"] else "active",
            local_iso(s.get("last_run")),
            local_iso(s.get("next_run")),
            str((s.get("last_outcome") or {}).get("status") or "-"),
        )
        for s in schedules
    ]
    header = ("FUNCTION", "ID", "CRON", "TIME ZONE", "STATE", "LAST RUN (LOCAL)",
              "NEXT RUN (LOCAL)", "OUTCOME")  # fmt: skip
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        lines.append("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    return lines
