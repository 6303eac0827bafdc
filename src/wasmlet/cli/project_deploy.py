"""Deploying a project's manifest: build, hash, skip what did not change, one report.

A function is deployed when the content hash of what the manifest sends for it (the
source or built module, its config, triggers, env and hosts) differs from the hash
recorded at its last deploy from this folder, or when the server's live record is no
longer the one that deploy made (another deploy, a rollback, `config --set`: its
version, module digest or update time differ). The record is kept in
`.wasmlet/deploy-state.json` next to `wasmlet.toml`, per server URL (docs/decisions.md)."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wasmlet.cli.manifest import FunctionSpec, Project
from wasmlet.client import ConnectionFailed, WasmletClient
from wasmlet.errors import FunctionError

STATE_FILE = ".wasmlet/deploy-state.json"
BUILD_TIMEOUT_S = 600
MAX_MESSAGE = 2000
# The deploy route's compile errors end with "(FILE: line N, column M)".
_SERVER_POSITION = re.compile(
    r"\s*\((?P<file>[^()]+?): line (?P<line>\d+)(?:, column (?P<col>\d+))?\)"
)
# A compiler's "path:line:column: error: ..." line.
_COMPILER_ERROR = re.compile(r"^(?P<file>[^:\s][^:]*):(?P<line>\d+):(?P<col>\d+): (?:fatal )?error")


class BuildFailed(Exception):
    def __init__(self, message: str, location: str | None = None) -> None:
        super().__init__(message)
        self.message, self.location = message, location


@dataclass(frozen=True, slots=True)
class Built:
    """What is sent: JavaScript/TypeScript source, or a module's bytes."""

    source: str | None
    wasm: bytes | None
    filename: str
    relative: str  # the file as the manifest names it, for error positions
    digest: str


@dataclass(slots=True)
class Result:
    name: str
    status: str  # deployed, unchanged, failed
    version: int | None = None
    error: str | None = None
    location: str | None = None  # file:line:column of the error, when known
    exit_code: int = 0

    def line(self) -> str:
        if self.status == "failed":
            where = f"{self.location}: " if self.location else ""
            return f"failed     {self.name}: {where}{self.error}"
        return f"{self.status:<10} {self.name} version {self.version}"


def build(project: Project, name: str, spec: FunctionSpec) -> Built:
    """Runs the build command (if any) and reads what is deployed."""
    if spec.build is not None:
        run_build(project, spec.build)
    relative = spec.source or spec.wasm or ""
    path = project.file(relative)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise BuildFailed(f"{relative}: cannot be read: {exc.strerror or exc}") from exc
    digest = hashlib.sha256()
    declared = {
        "name": name,
        "config": spec.deploy_config(),
        "triggers": spec.deploy_triggers(),
        "kind": "source" if spec.source else "wasm",
        "filename": path.name,
    }
    digest.update(json.dumps(declared, sort_keys=True).encode())
    digest.update(b"\0")
    digest.update(data)
    if spec.source is not None:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise BuildFailed(f"{relative}: not UTF-8 ({exc.reason} at byte {exc.start})") from exc
        return Built(text, None, path.name, relative, digest.hexdigest())
    return Built(None, data, path.name, relative, digest.hexdigest())


def run_build(project: Project, command: str) -> None:
    """The manifest's build command, run in the project folder without a shell. A
    leading `python`/`python3` is the Python running wasmlet (so its zig is used)."""
    try:
        argv = shlex.split(command)
    except ValueError as exc:
        raise BuildFailed(f"build command cannot be split: {exc}") from exc
    if argv and argv[0] in ("python", "python3"):
        argv[0] = sys.executable
    try:
        done = subprocess.run(
            argv, cwd=project.root, capture_output=True, timeout=BUILD_TIMEOUT_S, check=False,
            env={**os.environ},
        )  # fmt: skip
    except FileNotFoundError as exc:
        raise BuildFailed(f"build command not found: {argv[0]}") from exc
    except subprocess.TimeoutExpired as exc:
        raise BuildFailed(f"build command did not finish within {BUILD_TIMEOUT_S}s") from exc
    if done.returncode == 0:
        return
    output = (done.stderr + done.stdout).decode("utf-8", "replace")
    for text in output.splitlines():
        found = _COMPILER_ERROR.match(text)
        if found:
            location = f"{found['file']}:{found['line']}:{found['col']}"
            message = text[found.end("col") + 2 :].strip()
            raise BuildFailed(message[:MAX_MESSAGE], location)
    tail = output.strip()[-MAX_MESSAGE:]
    raise BuildFailed(f"build failed (exit code {done.returncode}): {tail}")


def server_error(built: Built | None, message: str) -> tuple[str, str | None]:
    """A deploy error's message and, for a compile error, file:line:column in the
    project (the server names the file it was sent)."""
    found = _SERVER_POSITION.search(message)
    if found is None or built is None or found["file"].strip() != built.filename:
        return message, None
    location = f"{built.relative}:{found['line']}"
    if found["col"]:
        location += f":{found['col']}"
    return (message[: found.start()] + message[found.end() :]).strip(), location


class DeployState:
    """What this folder deployed last, per server and function."""

    def __init__(self, project: Project, url: str) -> None:
        self.path = project.root / STATE_FILE
        self.url = url.rstrip("/")
        try:
            data = json.loads(self.path.read_text("utf-8"))
        except (OSError, ValueError):
            data = {}
        self.data: dict[str, Any] = data if isinstance(data, dict) else {}

    def entry(self, name: str) -> dict[str, Any] | None:
        server = self.data.get(self.url)
        found = server.get(name) if isinstance(server, dict) else None
        return found if isinstance(found, dict) else None

    def record(self, name: str, digest: str, record: dict[str, Any]) -> None:
        server = self.data.setdefault(self.url, {})
        server[name] = {"hash": digest, **_identity(record)}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_name(f".{self.path.name}.{os.getpid()}")
        temporary.write_text(json.dumps(self.data, indent=2, sort_keys=True) + "\n", "utf-8")
        os.replace(temporary, self.path)


IDENTITY = ("version", "module_sha256", "updated_at")


def _identity(record: dict[str, Any]) -> dict[str, Any]:
    return {field: record.get(field) for field in IDENTITY}


def _live(client: WasmletClient, name: str) -> dict[str, Any] | None:
    try:
        record: dict[str, Any] = client.get(name)
    except FunctionError as exc:
        if exc.status == 404 and not isinstance(exc, ConnectionFailed):
            return None
        raise
    return record


def deploy_one(
    client: WasmletClient,
    project: Project,
    state: DeployState,
    name: str,
    spec: FunctionSpec,
    secret_names: set[str] | None,
    force: bool = False,
) -> Result:
    """Builds and deploys one function unless unchanged. A connection failure is raised
    (nothing else can be deployed either); every other failure is the result."""
    from wasmlet.cli.exit_codes import ExitCode, exit_code_for

    try:
        built = build(project, name, spec)
    except BuildFailed as exc:
        return Result(name, "failed", error=exc.message, location=exc.location,
                      exit_code=ExitCode.INVALID_REQUEST)  # fmt: skip
    missing = sorted(set(spec.secrets) - (secret_names or set()))
    if missing:
        return Result(
            name, "failed", exit_code=ExitCode.INVALID_REQUEST,
            error=f"secret(s) {', '.join(missing)} not set on {client.url} "
            f"(wasmlet secrets set {missing[0]}=...)",
        )  # fmt: skip
    try:
        live = _live(client, name)
        known = state.entry(name)
        if (
            not force
            and live is not None
            and known is not None
            and known.get("hash") == built.digest
            and _identity(live) == {k: known.get(k) for k in IDENTITY}
        ):
            return Result(name, "unchanged", version=live["version"])
        config, triggers = spec.deploy_config(), spec.deploy_triggers()
        if built.source is not None:
            record = client.deploy_javascript(
                name, built.source, config, triggers=triggers, filename=built.filename
            )
        else:
            assert built.wasm is not None
            record = client.deploy(name, built.wasm, config, triggers=triggers)
    except ConnectionFailed:
        raise
    except FunctionError as exc:
        message, location = server_error(built, exc.message)
        return Result(name, "failed", error=f"{exc.status} {exc.type}: {message}",
                      location=location, exit_code=exit_code_for(exc))  # fmt: skip
    state.record(name, built.digest, record)
    return Result(name, "deployed", version=record["version"])


def deploy_project(
    client: WasmletClient,
    project: Project,
    names: list[str] | None = None,
    force: bool = False,
    on_result: Callable[[Result], None] = lambda _result: None,
) -> list[Result]:
    """Deploys the manifest's functions (or `names`), in manifest order; `on_result`
    hears of each as it is done."""
    functions = project.manifest.functions
    chosen = list(functions) if names is None else names
    state = DeployState(project, client.url)
    needs_secrets = any(functions[name].secrets for name in chosen)
    secret_names = {s["name"] for s in client.secrets()["secrets"]} if needs_secrets else None
    results = []
    for name in chosen:
        result = deploy_one(client, project, state, name, functions[name], secret_names, force)
        on_result(result)
        results.append(result)
    return results


def summary(results: list[Result]) -> str:
    counts = {s: sum(r.status == s for r in results) for s in ("deployed", "unchanged", "failed")}
    return f"{len(results)} function(s): " + ", ".join(f"{n} {s}" for s, n in counts.items())


def first_error(results: list[Result]) -> Result | None:
    return next((r for r in results if r.status == "failed"), None)


def watched_paths(project: Project, spec: FunctionSpec) -> set[Path]:
    """The files whose change redeploys the function."""
    paths = {project.file(p) for p in spec.watch}
    if spec.source is not None:
        paths.add(project.file(spec.source))
    elif spec.wasm is not None and spec.build is None:
        paths.add(project.file(spec.wasm))
    return paths
