"""`wasmlet logs` (a function's log lines, `--follow` polls with a cursor) and
`wasmlet top` (per function figures, refreshing live)."""

from __future__ import annotations

import json
import signal
import sys
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

import click

from wasmlet.cli.times import local_iso, when_option
from wasmlet.client import ConnectionFailed, WasmletClient
from wasmlet.errors import FunctionError

if TYPE_CHECKING:  # rich is imported when `top` runs, not by every command
    from rich.console import Group
    from rich.text import Text

LEVEL_STYLE = {"debug": "dim", "info": "", "warn": "yellow", "error": "red"}
BREAKER_STYLE = {"closed": "green", "half_open": "yellow", "open": "bold red"}
ERROR_RATE_ALERT = 0.10  # the spec's CRITICAL threshold
NON_TTY_WIDTH = 140


def _print_line(line: dict[str, Any], as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(line, sort_keys=True))
        return
    level = str(line["level"]).upper()
    click.echo(
        f"{local_iso(line['timestamp'])}  {level:<5}  {line['request_id']}  {line['message']}"
    )


def _stats_view(stats: dict[str, Any], url: str) -> Group:
    from rich import box
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    server = stats["server"]
    workers = server["workers"]
    queue = server["queue"]
    minutes = stats["window_s"] / 60
    header = Text.assemble(
        ("wasmlet ", "bold"),
        f"{url}  last {minutes:g} min  at {local_iso(stats['generated_at'])}\n",
        f"workers {workers['alive']}/{workers['size']} (busy {workers['busy']})  "
        f"in flight {server['in_flight']}  queue queued={queue.get('queued', 0)} "
        f"running={queue.get('running', 0)} dead={queue.get('dead', 0)}  "
        f"oldest queued {server['oldest_queued_age_s']:g}s",
    )
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, header_style="bold")
    for column in ("FUNCTION", "INVOCATIONS", "ERRORS", "ERROR %", "P50 MS", "P99 MS"):
        table.add_column(column, justify="left" if column == "FUNCTION" else "right")
    table.add_column("TIMEOUTS", justify="right")
    table.add_column("MEMORY", justify="right")
    table.add_column("BREAKER")
    for f in stats["functions"]:
        rate = f["error_rate"]
        breaker = f["circuit_breaker"]
        table.add_row(
            f["name"],
            str(f["invocations"]),
            str(f["errors"]),
            Text(f"{rate * 100:.1f}", style="bold red" if rate > ERROR_RATE_ALERT else ""),
            _ms(f["p50_ms"]),
            _ms(f["p99_ms"]),
            str(f["timeouts"]),
            str(f["memory_limit_hits"]),
            Text(breaker, style=BREAKER_STYLE.get(breaker, "")),
        )
    parts: list[Any] = [header, table]
    if not stats["functions"]:
        parts.append(Text("no functions deployed", style="dim"))
    if not stats.get("history", True):
        parts.append(Text("history is off (WASMLET_HISTORY=false): no figures", style="yellow"))
    return Group(*parts)


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _fetch(client: WasmletClient, minutes: float, url: str) -> Group | Text:
    """The view, or what went wrong: a live view outlasts a server restart."""
    from rich.text import Text

    try:
        return _stats_view(client.stats(minutes), url)
    except (ConnectionFailed, FunctionError) as exc:
        return Text(f"{url}: {exc}", style="bold red")


ClientFactory = Callable[["str | None", "str | None", str], AbstractContextManager[WasmletClient]]


def observability_commands(
    client_options: Callable[[Any], Any], client_factory: ClientFactory
) -> list[click.Command]:
    """The commands, built with the CLI's shared options and client (cli/main.py owns
    them; taking them here keeps this module from importing main)."""
    _client_options, _client = client_options, client_factory

    @click.command()
    @click.argument("name")
    @click.option("-f", "--follow", is_flag=True, help="Keep printing new lines (Ctrl-C stops).")
    @click.option("--level", default=None, help="Minimum level: debug, info, warn, error.")
    @click.option("--request-id", default=None, help="Only this invocation's lines.")
    @click.option(
        "--since", default=None,
        help="From: 90s, 5m, 2h, 1d, '5 minutes ago', ISO 8601 (local unless zoned) or epoch.",
    )  # fmt: skip
    @click.option("--until", default=None, help="Up to (exclusive); as --since.")
    @click.option("--limit", type=int, default=100, show_default=True, help="Lines to show first.")
    @click.option("--interval", type=float, default=1.0, show_default=True, help="--follow poll.")
    @click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
    @_client_options
    def logs(
        name: str, follow: bool, level: str | None, request_id: str | None, since: str | None,
        until: str | None, limit: int, interval: float, as_json: bool, url: str | None,
        key: str | None, data_dir: str,
    ) -> None:  # fmt: skip
        """Show function NAME's log lines (stderr, log host calls, platform errors)."""
        filters: dict[str, Any] = {
            "level": level,
            "request_id": request_id,
            "since": when_option(since, "--since"),
            "until": when_option(until, "--until"),
        }
        with _client(url, key, data_dir) as client:
            page = client.logs(name, limit=limit, **filters)
            for line in page["lines"]:
                _print_line(line, as_json)
            if not follow:
                return
            cursor = page["cursor"]
            # Ctrl-C ends the loop between polls: an interrupt in the middle of an HTTP
            # call could leave the client's connection pool locked and the exit hanging.
            stop = threading.Event()
            previous = signal.signal(signal.SIGINT, lambda _signo, _frame: stop.set())
            try:
                sys.stdout.flush()
                while not stop.wait(interval):
                    page = client.logs(name, after=cursor, limit=1000, **filters)
                    for line in page["lines"]:
                        _print_line(line, as_json)
                    cursor = page["cursor"]
                    sys.stdout.flush()
            finally:
                signal.signal(signal.SIGINT, previous)

    @click.command()
    @click.option("--once", is_flag=True, help="Print one view and exit (no live refresh).")
    @click.option("--interval", type=float, default=2.0, show_default=True, help="Refresh every.")
    @click.option("--minutes", type=float, default=5.0, show_default=True, help="Window.")
    @_client_options
    def top(
        once: bool, interval: float, minutes: float, url: str | None, key: str | None, data_dir: str
    ) -> None:
        """Per function invocations, error rate, p50/p99 duration and breaker state, live."""
        from rich.console import Console
        from rich.live import Live

        console = Console(width=None if sys.stdout.isatty() else NON_TTY_WIDTH)
        with _client(url, key, data_dir) as client:
            if once:
                console.print(_stats_view(client.stats(minutes), client.url))
                return
            with Live(
                _fetch(client, minutes, client.url), console=console, auto_refresh=False
            ) as live:
                try:
                    while True:
                        time.sleep(interval)
                        live.update(_fetch(client, minutes, client.url), refresh=True)
                except KeyboardInterrupt:
                    return

    return [logs, top]
