"""`wasmlet serve | init | new | dev | login | deploy | invoke | list | get | config |
enable | disable | delete | versions | rollback | secrets | keys | alerts`."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

import click

from wasmlet.cli.config_set import changes_for, parse_key, parse_set
from wasmlet.cli.deploy_flags import merge_config, merge_triggers, parse_deploy_flags
from wasmlet.cli.env_file import read_env_file
from wasmlet.cli.exit_codes import ExitCode, exit_code_for, exit_code_for_status
from wasmlet.cli.invoke_flags import head, parse_headers, parse_method, parse_path, read_payload
from wasmlet.cli.profile import (
    DEFAULT_URL,
    ProfileError,
    profile_path,
    resolve,
    write_profile,
)
from wasmlet.cli.schedule_table import schedule_table
from wasmlet.cli.times import local_iso
from wasmlet.client import ConnectionFailed, RetryPolicy, WasmletClient
from wasmlet.errors import FunctionError

DEPLOY_TIMEOUT_S = 600.0  # a first JavaScript deploy may build the engine (minutes when loaded)


@click.group()
@click.version_option(package_name="wasmlet")
def main() -> None:
    """Serverless WebAssembly functions with a failure model you can rely on."""


@main.command()
@click.option("--host", default=None, help="Address to listen on [127.0.0.1].")
@click.option("--port", type=int, default=None, help="Port to listen on [8787].")
@click.option("--data-dir", default=None, help="Where SQLite, modules and keys live [.wasmlet].")
@click.option("--database-url", default=None, help="postgresql://... for PostgreSQL.")
@click.option("--workers", type=int, default=None, help="Worker processes [CPU count].")
@click.option("--config", "config_file", default=None, help="TOML settings file.")
@click.option(
    "--log-format", type=click.Choice(["auto", "json", "console"]), default=None,
    help="Log lines as JSON or human-readable [auto: readable on a TTY, else JSON].",
)  # fmt: skip
def serve(**flags: Any) -> None:
    """Start the server (embedded SQLite defaults)."""
    import uvicorn

    from wasmlet.api.app import create_app
    from wasmlet.dashboard import install_dashboard
    from wasmlet.settings import SettingsError, load_settings

    try:
        settings = load_settings(**flags)
    except SettingsError as exc:
        for line in exc.lines():
            click.echo(f"error: {line}", err=True)
        sys.exit(ExitCode.USAGE)
    app = create_app(settings)
    install_dashboard(app)
    ready = (
        f"wasmlet ready on http://{settings.host}:{settings.port} "
        f"(data in {settings.data_dir.resolve()})"
    )

    class ReadyServer(uvicorn.Server):
        """Says "ready" once the socket is bound and the app started, never before."""

        async def startup(self, sockets: Any = None) -> None:
            await super().startup(sockets=sockets)
            if self.started and not self.should_exit:
                click.echo(ready, err=True)

    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=5,
    )
    click.echo(f"wasmlet starting on http://{settings.host}:{settings.port}", err=True)
    ReadyServer(config).run()


def _client_options(func: Any) -> Any:
    func = click.option(
        "--key", default=None,
        help="Service key [$WASMLET_SERVICE_KEY or $WASMLET_KEY, else the nearest wasmlet.toml's "
        "key_env or data_dir, else the `wasmlet login` "
        "profile, else the data dir's].",
    )(func)  # fmt: skip
    func = click.option(
        "--data-dir", envvar="WASMLET_DATA_DIR", default=".wasmlet", show_default=True,
        help="A server's data dir, read (never created) for its service key, last.",
    )(func)  # fmt: skip
    return click.option(
        "--url",
        default=None,
        help=f"Server [$WASMLET_URL, else the nearest wasmlet.toml's, else the profile's, "
        f"else {DEFAULT_URL}].",
    )(func)


@contextmanager
def _client(
    url: str | None, key: str | None, data_dir: str, retries: int = 1, timeout_s: float = 60.0
) -> Iterator[WasmletClient]:
    from wasmlet.cli.project_commands import manifest_server, nearest_project

    try:
        manifest = None if url and key else manifest_server(nearest_project(required=False))
        target = resolve(url, key, data_dir, manifest=manifest)
    except ProfileError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(ExitCode.USAGE)
    try:
        with WasmletClient(
            target.url, target.key, timeout_s=timeout_s, retry=RetryPolicy(max_attempts=retries)
        ) as client:
            yield client
    except ConnectionFailed as exc:  # before FunctionError: it is one, without a status
        click.echo(f"error: {exc}", err=True)
        sys.exit(ExitCode.CONNECTION_FAILED)
    except FunctionError as exc:
        click.echo(f"error: {exc.status} {exc.type}: {exc.message}", err=True)
        if exc.status == 401:
            click.echo(f"the key sent to {target.url} came from {target.key_source}", err=True)
        if exc.request_id:
            click.echo(f"request id: {exc.request_id}", err=True)
        sys.exit(exit_code_for(exc))


def _print_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, sort_keys=True))


@main.command()
@click.argument("name", required=False)
@click.argument("wasm_file", required=False, type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--force", is_flag=True,
    help="Without FILE: deploy the manifest's functions even when unchanged.",
)  # fmt: skip
@click.option("--config", "config_json", default=None, help="Function config as JSON.")
@click.option("--timeout-ms", type=int, default=None)
@click.option("--memory-mb", type=int, default=None)
@click.option("--public/--private", default=None, help="Invocable without a key.")
@click.option(
    "--verify-jwt/--no-verify-jwt", default=None,
    help="Verify a user JWT in Authorization (the default) or ignore it.",
)  # fmt: skip
@click.option(
    "--replace-config", is_flag=True, default=False,
    help="Send --config and the flags as the whole config instead of merging them into "
    "the deployed one.",
)  # fmt: skip
@click.option("--cron", default=None, help='Run on a schedule: "*/5 * * * *" (added trigger).')
@click.option("--timezone", default=None, help="IANA time zone of --cron [UTC].")
@click.option("--on-table", default=None, help="Run on changes to [schema.]TABLE.")
@click.option("--events", default=None, help="With --on-table: INSERT,UPDATE,DELETE [all].")
@click.option("--env", "env_pairs", multiple=True, help="K=V environment variable (repeatable).")
@click.option(
    "--allow-host", "allow_hosts", multiple=True,
    help="Outbound HTTP allowed to this URL/host (repeatable).",
)  # fmt: skip
@_client_options
def deploy(
    name: str | None,
    wasm_file: str | None,
    force: bool,
    config_json: str | None,
    timeout_ms: int | None,
    memory_mb: int | None,
    public: bool | None,
    verify_jwt: bool | None,
    replace_config: bool,
    cron: str | None,
    timezone: str | None,
    on_table: str | None,
    events: str | None,
    env_pairs: tuple[str, ...],
    allow_hosts: tuple[str, ...],
    url: str | None,
    key: str | None,
    data_dir: str,
) -> None:
    """Deploy WASM_FILE as function NAME (a new version if it exists), or, without FILE,
    the nearest wasmlet.toml's functions (only NAME if given) that changed.

    A .js or .mjs file is deployed as a JavaScript function, a .ts or .mts file as a
    TypeScript one (types are stripped at deploy). On a redeploy, the fields
    given with --config and the flags replace those fields of the deployed config and
    every other field (env, retry, ...) is kept, unless --replace-config. --env names are
    set over the deployed env and --allow-host entries added to the deployed list;
    --cron and --on-table add a trigger to the live ones (replacing one on the same
    table, or with the same cron and zone).
    """
    if wasm_file is None:
        scope = dict(locals())
        given = [k for k in _FILE_ONLY if scope[k] not in (None, ())]
        if given or replace_config:
            raise click.UsageError(
                "the flags set one function deployed from a FILE; a manifest's functions "
                "take their config, env and triggers from wasmlet.toml"
            )
        from wasmlet.cli.project_commands import deploy_manifest

        deploy_manifest(
            partial(_client, timeout_s=DEPLOY_TIMEOUT_S), url, key, data_dir, name, force
        )
        return
    if name is None:  # click gives FILE only after NAME
        raise click.UsageError("NAME is missing")
    added = parse_deploy_flags(
        cron=cron, timezone=timezone, on_table=on_table, events=events, env=env_pairs,
        allow_host=allow_hosts,
    )  # fmt: skip
    try:
        config: dict[str, Any] | None = json.loads(config_json) if config_json else None
    except json.JSONDecodeError as exc:
        raise click.BadParameter(f"not JSON: {exc}", param_hint="'--config'") from exc
    if config is not None and not isinstance(config, dict):
        raise click.BadParameter("must be a JSON object", param_hint="'--config'")
    flags = {
        "timeout_ms": timeout_ms, "memory_mb": memory_mb, "public": public,
        "verify_jwt": verify_jwt,
    }  # fmt: skip
    for field, value in flags.items():
        if value is not None:
            config = {**(config or {}), field: value}
    path = Path(wasm_file)
    with _client(url, key, data_dir) as client:
        live = (
            _live(client, name)
            if config is not None or added.changes_config or added.triggers
            else None
        )
        deployed = _set_fields(live["config"]) if live else {}
        if added.changes_config:
            base = (config or {}) if replace_config else {**deployed, **(config or {})}
            config = {**(config or {}), **merge_config(base, added)}
        if config is not None and not replace_config:
            config = {**deployed, **config}
        triggers = None
        if added.triggers:
            triggers = merge_triggers(live["triggers"] if live else None, added.triggers)
        if path.suffix in (".js", ".mjs", ".ts", ".mts"):
            source = path.read_text("utf-8")
            record = client.deploy_javascript(
                name, source, config, triggers=triggers, filename=path.name
            )
        else:
            record = client.deploy(name, path.read_bytes(), config, triggers=triggers)
    click.echo(f"deployed {record['name']} version {record['version']}")


_FILE_ONLY = frozenset({
    "config_json", "timeout_ms", "memory_mb", "public", "verify_jwt", "cron", "timezone",
    "on_table", "events", "env_pairs", "allow_hosts",
})  # fmt: skip


def _live(client: WasmletClient, name: str) -> dict[str, Any] | None:
    """The live record of `name` (config and triggers), None before its first deploy."""
    try:
        record: dict[str, Any] = client.get(name)
    except FunctionError as exc:
        if exc.status == 404:
            return None
        raise
    return record


def _set_fields(deployed: dict[str, Any]) -> dict[str, Any]:
    """The config without the fields left at their default."""
    return {field: value for field, value in deployed.items() if value is not None}


@main.command()
@click.argument("name")
@click.option(
    "-d", "--data", "data", default=None,
    help="Payload text; '@FILE' reads a file, '-' reads stdin.",
)  # fmt: skip
@click.option("--file", "file", type=click.Path(exists=True, dir_okay=False), default=None)
@click.option("-X", "--method", default="POST", show_default=True, help="HTTP method.")
@click.option(
    "-H", "--header", "header_lines", multiple=True, metavar="'NAME: VALUE'",
    help="Request header (repeatable).",
)  # fmt: skip
@click.option("--path", default=None, help="Path after the function's name (/sub?x=1).")
@click.option(
    "-i", "--include", is_flag=True,
    help="Print the status line and headers before the body (error answers too).",
)  # fmt: skip
@click.option("--retries", type=int, default=0, show_default=True, help="Extra attempts on 5xx.")
@click.option("--async", "run_async", is_flag=True, help="Queue it; print the invocation id.")
@_client_options
def invoke(
    name: str,
    data: str | None,
    file: str | None,
    method: str,
    header_lines: tuple[str, ...],
    path: str | None,
    include: bool,
    retries: int,
    run_async: bool,
    url: str | None,
    key: str | None,
    data_dir: str,
) -> None:
    """Invoke NAME and print its response body."""
    verb, headers, sub = parse_method(method), parse_headers(header_lines), parse_path(path)
    payload = read_payload(data, file)
    if run_async:
        if verb != "POST" or sub or headers or include:
            raise click.UsageError("--async takes neither -X, -H, --path nor -i")
        with _client(url, key, data_dir) as client:
            click.echo(client.invoke_async(name, payload))
        return
    with _client(url, key, data_dir, retries=retries + 1) as client:
        response = client.invoke(
            name, payload, headers=headers, method=verb, path=sub, return_errors=include
        )
    if include:
        sys.stdout.write(head(response.status, response.headers))
        sys.stdout.flush()
    sys.stdout.buffer.write(response.body)
    if response.body and not response.body.endswith(b"\n") and sys.stdout.isatty():
        sys.stdout.write("\n")
    if response.status >= 400:
        sys.stdout.flush()
        sys.exit(exit_code_for_status(response.status))


@main.command(name="list")
@_client_options
def list_functions(url: str | None, key: str | None, data_dir: str) -> None:
    """List functions."""
    with _client(url, key, data_dir) as client:
        records = client.list()
    if not records:
        click.echo("no functions")
        return
    click.echo(f"{'NAME':<24} {'VERSION':>7}  {'ENABLED':<7}  {'SHA256':<12}  UPDATED (LOCAL)")
    for r in records:
        enabled = "yes" if r["enabled"] else "no"
        click.echo(
            f"{r['name']:<24} {r['version']:>7}  {enabled:<7}  {r['module_sha256'][:12]:<12}  "
            f"{local_iso(r['updated_at'])}"
        )


@main.command()
@click.argument("name")
@_client_options
def get(name: str, url: str | None, key: str | None, data_dir: str) -> None:
    """Show one function."""
    with _client(url, key, data_dir) as client:
        _print_json(client.get(name))


@main.command(name="config")
@click.argument("name")
@click.option(
    "--set", "sets", multiple=True, metavar="KEY=VALUE",
    help="Set a config field or dotted key (env.LEVEL=debug); VALUE is JSON when it parses, "
    "else a string (always a string under env). Repeatable.",
)  # fmt: skip
@click.option(
    "--unset", "unsets", multiple=True, metavar="KEY",
    help="Reset a field to its default, or remove a dotted key (env.LEVEL). Repeatable.",
)  # fmt: skip
@_client_options
def config_command(
    name: str, sets: tuple[str, ...], unsets: tuple[str, ...], url: str | None, key: str | None,
    data_dir: str,
) -> None:  # fmt: skip
    """Change NAME's config in place (no new version): the keys given change, the rest stay.
    With neither --set nor --unset, print the config."""
    if not sets and not unsets:
        with _client(url, key, data_dir) as client:
            _print_json(client.get(name)["config"])
        return
    for item in sets:
        parse_set(item)  # a bad key or assignment is a usage error before any request
    for item in unsets:
        parse_key(item, "--unset")
    with _client(url, key, data_dir) as client:
        changes = changes_for(client.get(name)["config"], sets, unsets)
        record = client.update(name, **changes)
    _print_json(record["config"])


@main.command()
@click.argument("name")
@_client_options
def enable(name: str, url: str | None, key: str | None, data_dir: str) -> None:
    """Enable NAME."""
    with _client(url, key, data_dir) as client:
        client.update(name, enabled=True)
    click.echo(f"enabled {name}")


@main.command()
@click.argument("name")
@_client_options
def disable(name: str, url: str | None, key: str | None, data_dir: str) -> None:
    """Disable NAME: invocations get 404 until it is enabled again."""
    with _client(url, key, data_dir) as client:
        client.update(name, enabled=False)
    click.echo(f"disabled {name}")


@main.command()
@click.argument("name")
@_client_options
def delete(name: str, url: str | None, key: str | None, data_dir: str) -> None:
    """Delete NAME and all its versions."""
    with _client(url, key, data_dir) as client:
        client.delete(name)
    click.echo(f"deleted {name}")


@main.command()
@_client_options
def nodes(url: str | None, key: str | None, data_dir: str) -> None:
    """Nodes serving from the same database, with their last heartbeat."""
    with _client(url, key, data_dir) as client:
        listing = client.nodes()
    click.echo(f"{'ID':<12} {'ADDRESS':<22} {'VERSION':<9} {'STATUS':<6} {'AGE S':>6} "
               f"{'WORKERS':>7} {'IN FLIGHT':>9}")  # fmt: skip
    for n in listing["nodes"]:
        mark = " *" if n["self"] else ""
        click.echo(
            f"{n['id'][:12]:<12} {n['address'][:22]:<22} {n['version'][:9]:<9} "
            f"{n['status']:<6} {n['heartbeat_age_s']:>6.1f} "
            f"{str(n['workers_alive']) + '/' + str(n['workers']):>7} {n['in_flight']:>9}{mark}"
        )


@main.group()
def secrets() -> None:
    """Project-wide secrets: every function sees them as environment variables."""


@secrets.command(name="set")
@click.argument("pairs", nargs=-1)
@click.option(
    "--env-file", type=click.Path(exists=True, dir_okay=False), default=None,
    help="NAME=VALUE lines (# comments, `export `, quotes allowed); keeps values out of "
    "shell history.",
)  # fmt: skip
@_client_options
def secrets_set(
    pairs: tuple[str, ...], env_file: str | None, url: str | None, key: str | None, data_dir: str
) -> None:
    """Set NAME=VALUE... (or those of --env-file); existing names are replaced."""
    values = read_env_file(Path(env_file)) if env_file else {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep:
            raise click.UsageError(f"expected NAME=VALUE, got {name!r} without '='")
        values[name] = value
    if not values:
        raise click.UsageError("nothing to set: give NAME=VALUE or --env-file")
    with _client(url, key, data_dir) as client:
        client.set_secrets(values)
    click.echo(f"set {', '.join(sorted(values))}")


@secrets.command(name="list")
@_client_options
def secrets_list(url: str | None, key: str | None, data_dir: str) -> None:
    """Names, digests and when each was set; never the values."""
    with _client(url, key, data_dir) as client:
        listing = client.secrets()
    click.echo(f"{'NAME':<32} {'DIGEST':<16} UPDATED (LOCAL)")
    for s in listing["secrets"]:
        click.echo(f"{s['name']:<32} {s['digest'][:16]:<16} {local_iso(s['updated_at'])}")


@secrets.command(name="unset")
@click.argument("names", nargs=-1, required=True)
@_client_options
def secrets_unset(names: tuple[str, ...], url: str | None, key: str | None, data_dir: str) -> None:
    """Remove NAMES."""
    with _client(url, key, data_dir) as client:
        for name in names:
            client.unset_secret(name)
    click.echo(f"unset {', '.join(names)}")


@main.group()
def schedules() -> None:
    """Scheduled functions: list them, pause, resume, run one now."""


@schedules.command(name="list")
@_client_options
def schedules_list(url: str | None, key: str | None, data_dir: str) -> None:
    """Schedules with their last run, next run and last outcome."""
    with _client(url, key, data_dir) as client:
        listing = client.schedules()
    for line in schedule_table(listing):
        click.echo(line)


def _schedule_command(action: str, help_text: str) -> None:
    @schedules.command(name=action, help=help_text)
    @click.argument("function")
    @click.argument("schedule_id")
    @_client_options
    def command(
        function: str, schedule_id: str, url: str | None, key: str | None, data_dir: str
    ) -> None:
        with _client(url, key, data_dir) as client:
            result = client.schedule_action(function, schedule_id, action)
        click.echo(json.dumps(result, sort_keys=True))


_schedule_command("pause", "Pause a schedule: no runs until it is resumed.")
_schedule_command("resume", "Resume a schedule; missed runs follow its catch-up policy.")
_schedule_command("run", "Run a schedule's function now, once.")


@main.group()
def dlq() -> None:
    """The dead letter queue: failed asynchronous invocations, kept until retried or purged."""


@dlq.command(name="list")
@click.option("--function", default=None)
@click.option("--error-type", default=None)
@click.option("--limit", type=int, default=100, show_default=True)
@_client_options
def dlq_list(
    function: str | None, error_type: str | None, limit: int, url: str | None, key: str | None,
    data_dir: str,
) -> None:  # fmt: skip
    """List dead letters, oldest failure first."""
    with _client(url, key, data_dir) as client:
        page = client.dead_letters(function, error_type, limit)
    click.echo(f"{page['total']} dead letter(s)")
    for entry in page["entries"]:
        error = entry["error"] or {}
        click.echo(
            f"{entry['id']}  {entry['function']:<20} attempts={entry['attempts']:<3} "
            f"{error.get('type', '')}: {error.get('message', '')[:80]}"
        )


@dlq.command(name="show")
@click.argument("entry_id")
@_client_options
def dlq_show(entry_id: str, url: str | None, key: str | None, data_dir: str) -> None:
    """Show one dead letter with its payload."""
    with _client(url, key, data_dir) as client:
        _print_json(client.dead_letter(entry_id))


def _dlq_bulk_command(action: str, help_text: str, done: str) -> None:
    """`dlq retry` and `dlq purge`: one entry, the entries a filter matches, or --all."""

    @dlq.command(name=action, help=help_text)
    @click.argument("entry_id", required=False)
    @click.option("--function", default=None)
    @click.option("--error-type", default=None)
    @click.option("--all", "everything", is_flag=True, help=f"{action.title()} every entry.")
    @_client_options
    def command(
        entry_id: str | None, function: str | None, error_type: str | None, everything: bool,
        url: str | None, key: str | None, data_dir: str,
    ) -> None:  # fmt: skip
        if not (entry_id or function or error_type or everything):
            raise click.UsageError("name an entry, a filter, or --all")
        with _client(url, key, data_dir) as client:
            apply = client.retry_dead_letters if action == "retry" else client.purge_dead_letters
            count = apply(entry_id, function, error_type)
        click.echo(f"{done} {count}")


_dlq_bulk_command(
    "retry", "Send dead letters back to the queue (after a fix), one or many.", "requeued"
)
_dlq_bulk_command("purge", "Delete dead letters for good.", "purged")


@main.command()
@click.option("--data-dir", envvar="WASMLET_DATA_DIR", default=".wasmlet", show_default=True)
@click.option(
    "--create", is_flag=True,
    help="Create the keys if this data dir has none (what `wasmlet serve` does).",
)  # fmt: skip
def keys(data_dir: str, create: bool) -> None:
    """Show the API keys of a server's data dir (never created without --create)."""
    from wasmlet.api.keys import load_or_create_keys

    path = Path(data_dir) / "keys.json"
    if not create and not path.is_file():
        click.echo(
            f"error: no keys in {path.resolve()}: run this where `wasmlet serve` keeps its "
            "data, pass --data-dir, or --create",
            err=True,
        )
        sys.exit(ExitCode.USAGE)
    loaded = load_or_create_keys(
        path, os.environ.get("WASMLET_SERVICE_KEY"), os.environ.get("WASMLET_ANON_KEY")
    )
    click.echo(f"service_key: {loaded.service}")
    click.echo(f"anon_key:    {loaded.anon}")


@main.command()
@click.argument("url")
@click.option("--key", required=True, help="The server's service key (`wasmlet keys` there).")
@click.option(
    "--no-check", is_flag=True, help="Save without checking the key against the server."
)  # fmt: skip
def login(url: str, key: str, no_check: bool) -> None:
    """Remember URL and its service key in your profile, for commands run from anywhere."""
    if not url.startswith(("http://", "https://")):
        raise click.BadParameter(f"{url!r} must start with http:// or https://", param_hint="URL")
    url = url.rstrip("/")
    if not no_check:
        with _client(url, key, ".") as client:
            client.list()
    path = profile_path()
    write_profile(path, url, key)
    click.echo(f"logged in to {url}: profile {path}")


def _add_observability_commands() -> None:
    """`logs` and `top` live in cli/observe.py, `versions` and `rollback` in
    cli/versions.py, built with the helpers above."""
    from wasmlet.cli.alerts import alert_commands
    from wasmlet.cli.dev import dev_command
    from wasmlet.cli.observe import observability_commands
    from wasmlet.cli.project_commands import project_commands
    from wasmlet.cli.versions import version_commands

    for command in observability_commands(_client_options, _client):
        main.add_command(command)
    for command in version_commands(_client_options, _client):
        main.add_command(command)
    for command in alert_commands(_client_options, _client):
        main.add_command(command)
    for command in project_commands(_client_options, _client):
        main.add_command(command)
    main.add_command(dev_command(_client_options))


_add_observability_commands()


if __name__ == "__main__":
    main()
