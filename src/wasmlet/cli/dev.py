"""`wasmlet dev`: the project's server (started on embedded defaults unless one is
given), its manifest deployed, the files watched and redeployed on save, and the
functions' log lines streamed to the terminal, coloured by level.

A failed build or deploy changes nothing on the server: the previous version keeps
serving, and the error is printed with its file, line and column."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import click
import httpx

from wasmlet.cli.exit_codes import ExitCode
from wasmlet.cli.manifest import ManifestError, Project, load_project
from wasmlet.cli.profile import ProfileError, resolve
from wasmlet.cli.project_commands import fail, manifest_server, nearest_project
from wasmlet.cli.project_deploy import Result
from wasmlet.client import ConnectionFailed, RetryPolicy, WasmletClient
from wasmlet.errors import FunctionError

DEFAULT_DATA_DIR = ".wasmlet/dev"
SERVER_START_S = 120.0
DEPLOY_TIMEOUT_S = 600.0  # a first JavaScript deploy may build the engine
WATCH_READY_MS = 500  # how soon the watcher's first (empty) batch says it is ready
LOG_POLL_S = 0.5
LEVEL_COLOUR: dict[str, dict[str, Any]] = {
    "debug": {"dim": True},
    "info": {},
    "warn": {"fg": "yellow"},
    "error": {"fg": "red", "bold": True},
}
IGNORED_DIRS = frozenset({".wasmlet", ".git", "node_modules", "__pycache__"})


def _now() -> str:
    return time.strftime("%H:%M:%S")


def _say(text: str, **style: Any) -> None:
    click.echo(click.style(f"{_now()}  {text}", **style) if style else f"{_now()}  {text}")


def _healthy(url: str) -> bool:
    try:
        return httpx.get(url.rstrip("/") + "/health", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


@contextmanager
def _own_server(project: Project, port: int | None) -> Iterator[tuple[str, str]]:
    """`wasmlet serve` on the manifest's data dir (embedded SQLite), its log in
    `server.log` there; (url, service key) once healthy. Stopped on the way out."""
    server = project.manifest.server
    data_dir = project.file(server.data_dir or DEFAULT_DATA_DIR)
    data_dir.mkdir(parents=True, exist_ok=True)
    parts = urlsplit(server.url or "http://127.0.0.1:8787")
    host = parts.hostname or "127.0.0.1"
    if host not in ("127.0.0.1", "localhost", "::1"):
        host = "127.0.0.1"  # a remote url in the manifest is not something we can start
    port = port or parts.port or 8787
    url = f"http://{host}:{port}"
    log_path = data_dir / "server.log"
    env = {k: v for k, v in os.environ.items() if k != "WASMLET_CONFIG_FILE"}
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "wasmlet", "serve", "--data-dir", str(data_dir),
             "--host", host, "--port", str(port), "--log-format", "json"],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + SERVER_START_S
        while not _healthy(url):
            if process.poll() is not None or time.monotonic() > deadline:
                tail = log_path.read_text("utf-8", "replace").splitlines()[-15:]
                fail("the dev server did not start:\n" + "\n".join(tail), ExitCode.UNAVAILABLE)
            time.sleep(0.1)
        keys_file = data_dir / "keys.json"  # absent when the environment gives both keys
        keys = json.loads(keys_file.read_text("utf-8")) if keys_file.is_file() else {}
        _say(f"server on {url} (data in {data_dir}, log in {log_path})", fg="green")
        yield url, os.environ.get("WASMLET_SERVICE_KEY") or keys["service_key"]
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


class LogStream:
    """Polls each function's log lines after a cursor and prints them, coloured."""

    def __init__(self, url: str, key: str | None, names: Callable[[], list[str]]) -> None:
        self._url, self._key, self._names = url, key, names
        self._cursors: dict[str, int] = {}
        self._since = time.time()
        self.stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="wasmlet-dev-logs", daemon=True)

    def start(self) -> None:
        """Lines from now on: the cursors of the functions known now are taken before this
        returns, so a call made right after it is streamed however late the thread runs."""
        self._since = time.time()
        with WasmletClient(self._url, self._key, timeout_s=10) as client:
            for name in self._names():
                with contextlib.suppress(ConnectionFailed, FunctionError):
                    self._cursors[name] = client.logs(name, limit=1)["cursor"]
        self._thread.start()

    def close(self) -> None:
        self.stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        with WasmletClient(self._url, self._key, timeout_s=10) as client:
            while not self.stop.wait(LOG_POLL_S):
                for name in self._names():
                    with contextlib.suppress(ConnectionFailed, FunctionError):
                        self._poll(client, name)

    def _poll(self, client: WasmletClient, name: str) -> None:
        cursor = self._cursors.get(name)
        if cursor is None:  # a function added later: its lines since the stream started
            page = client.logs(name, after=0, since=self._since, limit=1000)
        else:
            page = client.logs(name, after=cursor, limit=1000)
        for line in page["lines"]:
            level = str(line.get("level", "info"))
            style = LEVEL_COLOUR.get(level, {})
            text = f"{name} {level.upper():<5} {line['message']}"
            click.echo(click.style(f"{_now()}  {text}", **style) if style else f"{_now()}  {text}")
        self._cursors[name] = page["cursor"]


def _changed_functions(project: Project, changes: set[Path]) -> list[str] | None:
    """The functions a change touches; None when the manifest itself changed (all)."""
    from wasmlet.cli.project_deploy import watched_paths

    if project.path.resolve() in changes:
        return None
    return [
        name
        for name, spec in project.manifest.functions.items()
        if watched_paths(project, spec) & changes
    ]


def _filter(project_root: Path) -> Callable[[Any, str], bool]:
    root = project_root.resolve()

    def accept(_change: Any, path: str) -> bool:
        full = Path(path).resolve()
        parts = full.relative_to(root).parts if full.is_relative_to(root) else full.parts
        return not any(part in IGNORED_DIRS for part in parts)

    return accept


def _interrupt(_signo: int, _frame: Any) -> None:
    raise KeyboardInterrupt


def _deploy(client: WasmletClient, project: Project, names: list[str] | None) -> None:
    from wasmlet.cli.project_deploy import deploy_project, summary

    started = [time.perf_counter()]

    def report(result: Result) -> None:
        took = (time.perf_counter() - started[0]) * 1000
        started[0] = time.perf_counter()
        if result.status == "failed":
            where = f"{result.location}: " if result.location else ""
            _say(f"error: {result.name}: {where}{result.error}", fg="red", bold=True)
            _say(f"{result.name}: the previous version (if any) keeps serving", fg="yellow")
        elif result.status == "deployed":
            _say(f"deployed {result.name} version {result.version} in {took:.0f} ms", fg="green")
        else:
            _say(f"unchanged {result.name} version {result.version}")

    results = deploy_project(client, project, names, on_result=report)
    if names is None:
        _say(summary(results))


def dev_command(client_options: Callable[[Any], Any]) -> click.Command:
    @click.command()
    @click.option(
        "--port", type=int, default=None,
        help="Port of the server dev starts [the manifest url's, else 8787].",
    )  # fmt: skip
    @click.option("--no-logs", is_flag=True, help="Do not stream the functions' log lines.")
    @client_options
    def dev(port: int | None, no_logs: bool, url: str | None, key: str | None,
            data_dir: str) -> None:  # fmt: skip
        """Run the project: deploy wasmlet.toml, redeploy on save, stream the logs.

        Uses the server given by --url or $WASMLET_URL, or the manifest's url when a
        server answers there; otherwise starts one on embedded defaults in the
        manifest's data_dir (.wasmlet/dev). Ctrl-C stops (and stops that server)."""
        project = nearest_project(required=True)
        assert project is not None
        given = url or os.environ.get("WASMLET_URL")
        manifest_url = project.manifest.server.url
        with contextlib.ExitStack() as stack:
            signal.signal(signal.SIGTERM, _interrupt)  # stop the server dev started, too
            if given or (manifest_url and port is None and _healthy(manifest_url)):
                try:
                    target = resolve(url, key, data_dir, manifest=manifest_server(project))
                except ProfileError as exc:
                    fail(str(exc))
                    return
                server_url, server_key = target.url, target.key
                if server_key is None and not given:
                    fail(
                        f"a server already answers on {server_url} and dev has no key for it "
                        f"({target.key_source}): stop that server, give its service key "
                        "(--key, $WASMLET_SERVICE_KEY or `wasmlet login`), or run dev's own "
                        "server on another port with --port"
                    )
                    return
                _say(f"using the server on {server_url} (key from {target.key_source})")
            else:
                server_url, server_key = stack.enter_context(_own_server(project, port))
            client = stack.enter_context(
                WasmletClient(
                    server_url,
                    server_key,
                    timeout_s=DEPLOY_TIMEOUT_S,
                    retry=RetryPolicy(max_attempts=1),
                )
            )
            current = [project]
            try:
                _deploy(client, project, None)
            except FunctionError as exc:  # the watch goes on: a save retries
                _say(f"error: {exc}", fg="red", bold=True)
            if not no_logs:
                logs = LogStream(
                    server_url, server_key, lambda: list(current[0].manifest.functions)
                )
                logs.start()
                stack.callback(logs.close)
            try:
                _watch(client, current)
            except KeyboardInterrupt:
                _say("stopping")

    return dev


def _watch(client: WasmletClient, current: list[Project]) -> None:
    from watchfiles import watch

    root = current[0].root
    watching = False
    # The first (maybe empty) batch comes once the watches are in place: only then is
    # "watching" said, so a save right after it is never missed.
    for batch in watch(root, watch_filter=_filter(root), debounce=400, step=30,
                       rust_timeout=WATCH_READY_MS, yield_on_timeout=True,
                       raise_interrupt=True):  # fmt: skip
        if not watching:
            watching = True
            _say(f"watching {root} (Ctrl-C stops)")
        if not batch:
            continue
        changes = {Path(path).resolve() for _change, path in batch}
        project = current[0]
        names = _changed_functions(project, changes)
        if names is None:
            try:
                project = load_project(project.path)
            except ManifestError as exc:
                _say(f"error: {exc}", fg="red", bold=True)
                _say("the manifest is kept as it was until it is fixed", fg="yellow")
                continue
            current[0] = project
        elif not names:
            continue
        try:
            _deploy(client, project, names)
        except FunctionError as exc:  # the server down or refusing the key: next save
            _say(f"error: {exc}", fg="red", bold=True)
