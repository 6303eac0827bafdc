"""`wasmlet alerts`: the alerts firing now (GET /functions/v1/alerts) as a table."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import click

from wasmlet.cli.observe import ClientFactory
from wasmlet.cli.times import local_iso

MAX_SUMMARY = 100


def _subject(alert: dict[str, Any]) -> str:
    if alert.get("function"):
        return f"function {alert['function']}"
    if alert.get("node"):
        return f"node {alert['node']}"
    return "platform"


def _number(value: object) -> str:
    if isinstance(value, float) and not value.is_integer():
        return f"{value:.4g}"
    if isinstance(value, (int, float)):
        return str(int(value))
    return "-" if value is None else str(value)


def alert_table(alerts: list[dict[str, Any]]) -> list[str]:
    """The lines `wasmlet alerts` prints: labelled columns, local ISO 8601 times."""
    if not alerts:
        return ["no alerts firing"]
    lines = [
        f"{'SEVERITY':<8}  {'ALERT':<28}  {'SUBJECT':<28}  {'VALUE':>8}  {'THRESHOLD':>9}  "
        f"{'FIRING SINCE (LOCAL)':<25}  SUMMARY"
    ]
    for a in alerts:
        summary = str(a.get("summary") or "").splitlines()[0:1]
        text = summary[0][:MAX_SUMMARY] if summary else ""
        lines.append(
            f"{a['severity']!s:<8}  {a['alert']!s:<28}  {_subject(a):<28}  "
            f"{_number(a.get('value')):>8}  {_number(a.get('threshold')):>9}  "
            f"{local_iso(a.get('firing_since')):<25}  {text}".rstrip()
        )
    return lines


def alert_commands(
    client_options: Callable[[Any], Any], client_factory: ClientFactory
) -> list[click.Command]:
    _client_options, _client = client_options, client_factory

    @click.command()
    @click.option("--json", "as_json", is_flag=True, help="Print the route's JSON instead.")
    @_client_options
    def alerts(as_json: bool, url: str | None, key: str | None, data_dir: str) -> None:
        """The alerts firing now, most severe first (evaluated inside the server)."""
        with _client(url, key, data_dir) as client:
            firing: list[dict[str, Any]] = client.alerts()["alerts"]
        if as_json:
            click.echo(json.dumps({"alerts": firing}, indent=2, sort_keys=True))
            return
        for line in alert_table(firing):
            click.echo(line)

    return [alerts]
