"""`wasmlet alerts`: the table (cli/alerts.py), then the firing alerts of a real server."""

from __future__ import annotations

import json
import re
import time

from tests.cli.test_cli import run_cli
from tests.conftest import ServerFactory
from tests.support.build import wat
from wasmlet.cli.alerts import alert_table
from wasmlet.cli.exit_codes import ExitCode

LOCAL_ISO = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d")


def test_table_has_labelled_columns_and_local_times() -> None:
    lines = alert_table(
        [
            {
                "alert": "FunctionErrorRate", "severity": "critical", "function": "f",
                "node": None, "state": "firing", "value": 0.123456, "threshold": 0.1,
                "active_since": "2026-01-01T00:00:00+00:00",
                "firing_since": "2026-01-01T00:05:00+00:00",
                "summary": "f fails 12% of calls\nsecond line", "runbook": "x",
            },
            {
                "alert": "NodeSilent", "severity": "warning", "function": None,
                "node": "n1", "state": "firing", "value": 61.0, "threshold": 60,
                "active_since": None, "firing_since": None, "summary": "", "runbook": "",
            },
        ]
    )  # fmt: skip
    assert lines[0].split()[:6] == ["SEVERITY", "ALERT", "SUBJECT", "VALUE", "THRESHOLD", "FIRING"]
    first = lines[1].split()
    assert first[:5] == ["critical", "FunctionErrorRate", "function", "f", "0.1235"]
    assert LOCAL_ISO.fullmatch(first[6]) and lines[1].endswith("f fails 12% of calls")
    assert lines[2].split()[:7] == ["warning", "NodeSilent", "node", "n1", "61", "60", "-"]
    assert alert_table([]) == ["no alerts firing"]


def test_alerts_command_lists_what_the_server_has_firing(
    start_server: ServerFactory, fname: str
) -> None:
    with start_server(WASMLET_ALERT_INTERVAL_S="0.5") as server:
        quiet = run_cli(server, "alerts")
        assert quiet.returncode == 0, quiet.stderr.decode()
        assert quiet.stdout.decode().strip() == "no alerts firing"
        assert server.deploy(fname, wat("memory_hog")).status_code == 201
        assert server.invoke(fname).status_code == 507
        deadline = time.monotonic() + 60
        lines: list[str] = []
        while len(lines) < 2 and time.monotonic() < deadline:
            time.sleep(0.5)
            lines = run_cli(server, "alerts").stdout.decode().splitlines()
            lines = [] if lines == ["no alerts firing"] else lines
        assert lines[0].startswith("SEVERITY"), lines
        row = lines[1].split()
        assert row[:5] == ["info", "FunctionMemoryLimitHit", "function", fname, "1"], row
        assert LOCAL_ISO.fullmatch(row[6]), row
        raw = json.loads(run_cli(server, "alerts", "--json").stdout)
        assert [a["function"] for a in raw["alerts"]] == [fname]
        env_key = {"WASMLET_KEY": server.anon_key}
        refused = run_cli(None, "alerts", "--url", server.url, "--key", env_key["WASMLET_KEY"])
        assert refused.returncode == ExitCode.UNAUTHORIZED
