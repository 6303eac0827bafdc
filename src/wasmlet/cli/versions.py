"""`wasmlet versions NAME` (the kept versions, live one marked) and `wasmlet rollback
NAME [--to N]` (a kept version made live again, as a new version)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from wasmlet.cli.observe import ClientFactory
from wasmlet.cli.times import local_iso

PAGE = 100


def _size(size: int | None) -> str:
    if size is None:
        return "-"
    if size < 1024:
        return f"{size} B"
    if size < 1024 * 1024:
        return f"{size / 1024:.1f} KiB"
    return f"{size / (1024 * 1024):.1f} MiB"


def version_table(listing: dict[str, Any]) -> list[str]:
    """The lines `wasmlet versions` prints: labelled columns, local ISO 8601 times."""
    lines = [
        f"{'VERSION':>7}  {'LIVE':<4}  {'CREATED (LOCAL)':<25}  {'RUNTIME':<10}  "
        f"{'SIZE':>9}  {'SHA256':<12}  NOTE"
    ]
    for v in listing["versions"]:
        live = "*" if v["live"] else ""
        note = f"rollback to v{v['rolled_back_from']}" if v["rolled_back_from"] else ""
        lines.append(
            f"{v['version']:>7}  {live:<4}  {local_iso(v['created_at']):<25}  "
            f"{v['runtime'] or '-':<10}  {_size(v['size_bytes']):>9}  "
            f"{v['module_sha256'][:12]:<12}  {note}".rstrip()
        )
    return lines


def version_commands(
    client_options: Callable[[Any], Any], client_factory: ClientFactory
) -> list[click.Command]:
    _client_options, _client = client_options, client_factory

    @click.command()
    @click.argument("name")
    @click.option(
        "--limit", type=click.IntRange(1, 1000), default=20, show_default=True,
        help="Newest versions to show.",
    )  # fmt: skip
    @_client_options
    def versions(name: str, limit: int, url: str | None, key: str | None, data_dir: str) -> None:
        """List function NAME's kept versions, newest first; * marks the live one."""
        with _client(url, key, data_dir) as client:
            listing = client.versions(name, limit=min(limit, PAGE))
            rows = list(listing["versions"])
            while listing["next_before"] is not None and len(rows) < limit:
                listing = client.versions(
                    name, limit=min(limit - len(rows), PAGE), before=listing["next_before"]
                )
                rows.extend(listing["versions"])
        click.echo(f"{name}: live version {listing['live_version']}, "
                   f"up to {listing['versions_kept']} kept")  # fmt: skip
        for line in version_table({**listing, "versions": rows}):
            click.echo(line)

    @click.command()
    @click.argument("name")
    @click.option(
        "--to", "version", type=click.IntRange(1, 2**31 - 1), default=None,
        help="The version to make live again [the one before the live one].",
    )  # fmt: skip
    @_client_options
    def rollback(
        name: str, version: int | None, url: str | None, key: str | None, data_dir: str
    ) -> None:
        """Make a kept version of NAME live again, as a new version (history stays linear)."""
        with _client(url, key, data_dir) as client:
            record = client.rollback(name, version)
        target = f"v{version}" if version is not None else "the previous version"
        click.echo(f"rolled back {name} to {target}: live as version {record['version']}")

    return [versions, rollback]
