"""`wasmlet init`, `wasmlet new` and `wasmlet deploy` of a whole manifest."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from wasmlet.cli.exit_codes import ExitCode
from wasmlet.cli.manifest import ManifestError, Project, find_manifest, load_project
from wasmlet.cli.observe import ClientFactory
from wasmlet.cli.profile import ManifestServer
from wasmlet.cli.project_deploy import Result
from wasmlet.cli.scaffold import LANGS, ScaffoldError, add_function, init_project


def fail(message: str, code: int = ExitCode.USAGE) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def nearest_project(required: bool) -> Project | None:
    """The project of the nearest `wasmlet.toml` (cwd or a parent); a broken one is an
    error with its file, line and column."""
    path = find_manifest()
    if path is None:
        if required:
            fail(f"no wasmlet.toml in {Path.cwd()} or a parent folder (`wasmlet init` writes one)")
        return None
    try:
        return load_project(path)
    except ManifestError as exc:
        fail(str(exc))
    return None  # unreachable: fail exits


def manifest_server(project: Project | None) -> ManifestServer | None:
    if project is None:
        return None
    server = project.manifest.server
    data_dir = project.file(server.data_dir) if server.data_dir else None
    return ManifestServer(project.path, server.url, server.key_env, data_dir)


def print_result(result: Result) -> None:
    line = result.line()
    if result.status == "failed":
        click.echo(click.style(line, fg="red"), err=True)
    else:
        click.echo(line)


def deploy_manifest(
    client_factory: ClientFactory,
    url: str | None,
    key: str | None,
    data_dir: str,
    name: str | None,
    force: bool,
) -> None:
    """`wasmlet deploy [NAME]` in a project: what changed, one report, the first error."""
    from wasmlet.cli.project_deploy import deploy_project, first_error, summary

    project = nearest_project(required=True)
    assert project is not None
    if name is not None and name not in project.manifest.functions:
        fail(f"{project.path} declares no function {name!r} (and no FILE was given)")
    with client_factory(url, key, data_dir) as client:
        results = deploy_project(
            client, project, [name] if name else None, force, on_result=print_result
        )
    click.echo(summary(results))
    first = first_error(results)
    if first is not None:
        where = f"{first.location}: " if first.location else f"{project.path}: "
        click.echo(f"error: {where}{first.error}", err=True)
        sys.exit(first.exit_code or ExitCode.FUNCTION_FAILED)


def project_commands(
    client_options: Callable[[Any], Any], client_factory: ClientFactory
) -> list[click.Command]:
    @click.command()
    @click.argument("folder", required=False, type=click.Path(file_okay=False), default=".")
    @click.option("--name", default="hello", show_default=True, help="The example function.")
    @click.option(
        "--lang", type=click.Choice(LANGS), default="js", show_default=True,
        help="The example function's language.",
    )  # fmt: skip
    def init(folder: str, name: str, lang: str) -> None:
        """Start a project in FOLDER: wasmlet.toml and one example function."""
        _check_name(name)
        try:
            written = init_project(Path(folder), name, lang)
        except (ScaffoldError, ManifestError) as exc:
            fail(str(exc))
        for path in written:
            click.echo(f"wrote {path}")
        click.echo(f"next: cd {folder} && wasmlet dev")

    @click.command()
    @click.argument("name")
    @click.option(
        "--lang", type=click.Choice(LANGS), default="js", show_default=True,
        help="js, ts, or c (built by zig's clang for wasm32-wasi).",
    )  # fmt: skip
    def new(name: str, lang: str) -> None:
        """Add function NAME to the nearest wasmlet.toml (and its file under functions/)."""
        _check_name(name)
        path = find_manifest()
        if path is None:
            fail(f"no wasmlet.toml in {Path.cwd()} or a parent folder (`wasmlet init` first)")
            return
        try:
            written = add_function(path.parent, name, lang)
        except (ScaffoldError, ManifestError) as exc:
            fail(str(exc))
            return
        for item in written:
            click.echo(f"wrote {item}")
        click.echo(f"added [functions.{name}] to {path}")

    return [init, new]


def _check_name(name: str) -> None:
    from wasmlet.errors import FunctionError
    from wasmlet.registry.names import validate_name

    try:
        validate_name(name)
    except FunctionError as exc:
        raise click.BadParameter(exc.message, param_hint="NAME") from exc
