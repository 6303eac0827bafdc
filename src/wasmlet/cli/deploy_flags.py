"""`wasmlet deploy` flags that build the config and triggers JSON of the deploy route:
`--cron`/`--timezone`, `--on-table`/`--events`, `--env K=V`, `--allow-host URL`.

Each flag is checked here, before any request, with the server's own rules where they
can run without a server (config fields, cron and time zone); a bad value is a
`click.BadParameter` naming the flag (exit 2). Merging with the live version is in
`merge_config` and `merge_triggers` (the rules are in docs/decisions.md)."""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import click

from wasmlet.errors import FunctionError

EVENTS = ("INSERT", "UPDATE", "DELETE")
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
MAX_TABLE_NAME = 127


@dataclass(frozen=True, slots=True)
class DeployFlags:
    """What the flags ask for: config fields to merge and triggers to add."""

    env: dict[str, str] = field(default_factory=dict)
    allowed_hosts: list[str] = field(default_factory=list)
    triggers: list[dict[str, Any]] = field(default_factory=list)

    @property
    def changes_config(self) -> bool:
        return bool(self.env or self.allowed_hosts)


def parse_env(pairs: Sequence[str]) -> dict[str, str]:
    env: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise click.BadParameter(f"expected K=V, got {pair!r}", param_hint="'--env'")
        env[name] = value
    _check_config({"env": env}, "--env")
    return env


def parse_hosts(hosts: Sequence[str]) -> list[str]:
    unique = list(dict.fromkeys(hosts))
    _check_config({"allowed_hosts": unique}, "--allow-host")
    return unique


def _check_config(fields: dict[str, Any], flag: str) -> None:
    """The server's own config rules (env names and sizes, allowed host shape)."""
    from wasmlet.registry.models import FunctionConfig

    try:
        FunctionConfig.parse(fields)
    except FunctionError as exc:
        message = exc.message.removeprefix("Invalid function configuration: ")
        raise click.BadParameter(message, param_hint=f"'{flag}'") from exc


def schedule_trigger(cron: str, timezone: str | None) -> dict[str, Any]:
    from wasmlet.triggers.schedules import validate_schedule

    item: dict[str, Any] = {"type": "schedule", "cron": cron}
    if timezone is not None:
        item["timezone"] = timezone
    try:
        return validate_schedule(item, time.time(), "schedule")
    except FunctionError as exc:
        message = exc.message.removeprefix("Invalid trigger configuration: ")
        hint = "'--timezone'" if "timezone" in message else "'--cron'"
        raise click.BadParameter(message, param_hint=hint) from exc


def database_trigger(table: str, events: str | None) -> dict[str, Any]:
    schema, _, name = table.rpartition(".")
    if len(table) > MAX_TABLE_NAME or not all(
        _IDENTIFIER.fullmatch(part) for part in (schema or "x", name)
    ):
        raise click.BadParameter(
            f"{table!r} is not a table name ([schema.]table: letters, digits and '_', "
            f"not starting with a digit, at most {MAX_TABLE_NAME} characters)",
            param_hint="'--on-table'",
        )
    item: dict[str, Any] = {"type": "database", "table": table}
    if events is not None:
        chosen = [e.strip().upper() for e in events.split(",") if e.strip()]
        bad = [e for e in chosen if e not in EVENTS]
        if not chosen or bad:
            raise click.BadParameter(
                f"expected a comma-separated list of {', '.join(EVENTS)}, got {events!r}",
                param_hint="'--events'",
            )
        item["events"] = list(dict.fromkeys(chosen))
    return item


def parse_deploy_flags(
    *,
    cron: str | None,
    timezone: str | None,
    on_table: str | None,
    events: str | None,
    env: Sequence[str],
    allow_host: Sequence[str],
) -> DeployFlags:
    if timezone is not None and cron is None:
        raise click.UsageError("--timezone needs --cron")
    if events is not None and on_table is None:
        raise click.UsageError("--events needs --on-table")
    triggers: list[dict[str, Any]] = []
    if cron is not None:
        triggers.append(schedule_trigger(cron, timezone))
    if on_table is not None:
        triggers.append(database_trigger(on_table, events))
    return DeployFlags(parse_env(env), parse_hosts(allow_host), triggers)


def merge_config(deployed: dict[str, Any], flags: DeployFlags) -> dict[str, Any]:
    """`--env` names are set over the deployed env (others kept); `--allow-host` entries are
    added to the deployed list (order kept, no duplicates)."""
    changes: dict[str, Any] = {}
    if flags.env:
        changes["env"] = {**(deployed.get("env") or {}), **flags.env}
    if flags.allowed_hosts:
        hosts = [*(deployed.get("allowed_hosts") or []), *flags.allowed_hosts]
        changes["allowed_hosts"] = list(dict.fromkeys(hosts))
    return changes


def _same_target(live: dict[str, Any], new: dict[str, Any]) -> bool:
    if live.get("type") != new["type"]:
        return False
    if new["type"] == "schedule":
        return bool(live.get("cron") == new["cron"] and live.get("timezone") == new["timezone"])
    table = str(live.get("table", ""))
    wanted = str(new["table"])
    return table == wanted or ("." not in wanted and table.rpartition(".")[2] == wanted)


def merge_triggers(
    live: list[dict[str, Any]] | None, added: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """The live triggers (an HTTP one for a new function) plus the flags' ones; a flag's
    trigger replaces a live one on the same target (same table, or same cron and zone)."""
    merged = [dict(t) for t in live] if live is not None else [{"type": "http"}]
    for new in added:
        merged = [t for t in merged if not _same_target(t, new)]
        merged.append(new)
    return merged
