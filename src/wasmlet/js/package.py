"""JavaScript source -> a WASI command module with the function already loaded.

At deploy the engine (`engine.py`) is instantiated once with the function's source:
its `wasmlet_js_init` export runs the prelude, compiles the module (a syntax error
stops here, with its line and column), evaluates its top level and resolves the
handlers the triggers name. The instance's memory and globals are then written into
a copy of the engine module (`snapshot.py`). The result is an ordinary guest-ABI
module: the registry instruments, compiles and caches it like any other, and each
invocation starts from the snapshot, with no engine start-up and no parsing.

The module also carries a custom section, `wasmlet.javascript`, with the source, its
file name, the triggers it was packaged for and the engine build, so what runs can
always be traced back to the JavaScript that was deployed.

A `.ts` / `.mts` file is TypeScript: `typescript.py` turns it into JavaScript first
(with the JavaScript kept in the section too), and positions the engine reports at
deploy are given in the .ts file. In either language, a side-effect import of a type
declaration file (`import "jsr:@supabase/functions-js/edge-runtime.d.ts";`, the line
Supabase templates start with) is blanked out, as is, in TypeScript, an import left
empty by stripping its `type` specifiers; any other import is refused by the engine and
the refusal names the specifier, its line and why.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import threading
import time
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any

import wasmtime

from wasmlet.errors import InternalError, InvalidSource, InvalidTrigger
from wasmlet.js.engine import QUICKJS_VERSION, EngineBuild, default_cache_dir, ensure_engine
from wasmlet.js.snapshot import SNAPSHOT_GLOBAL_PREFIX, exporting_globals, snapshot
from wasmlet.js.typescript import (
    TRANSFORM_TIMEOUT_S,
    PositionMap,
    close_spare,
    is_typescript,
    transform,
)
from wasmlet.runtime.host import HOST_MODULE
from wasmlet.runtime.restore import MARKER_SECTION

PRELUDE = Path(__file__).parent / "prelude.js"
INIT_EXPORT = "wasmlet_js_init"
METADATA_SECTION = "wasmlet.javascript"
DEFAULT_FILENAME = "handler.js"
MAX_SOURCE_BYTES = 16 * 1024 * 1024
_FILENAME = re.compile(r"^[A-Za-z0-9_.-]{1,128}\.(?:js|mjs|ts|mts)$")
# `import "....d.ts";` on a line of its own: declarations only, nothing to run.
_TYPE_DECLARATION_IMPORT = re.compile(
    r"""^([ \t]*)(import[ \t]*(["'])[^"'\r\n]*\.d\.[cm]?ts\3[ \t]*;?)""", re.MULTILINE
)
# What `import { type A } from "./a.ts";` is once stripped: it imported types only.
_EMPTY_IMPORT = re.compile(
    r"""^([ \t]*)(import[ \t]*\{\s*\}[ \t]*from[ \t]*(["'])[^"'\r\n]*\3[ \t]*;?)""",
    re.MULTILINE,
)
_QUOTED = re.compile(r"""(["'])([^"'\r\n]*)\1""")
_PARENT_PREFIX = re.compile(r"^(?:\.{1,2}/)+")
_REFUSED_IMPORT = re.compile(r"^cannot import '(.*)': a function is a single file", re.DOTALL)
_NO_DB_IN_INIT = json.dumps(
    {
        "error": {
            "type": "db_unavailable",
            "message": "db.query cannot run at deploy, while the module's top level runs",
        }
    }
).encode()
_NO_HTTP_IN_INIT = json.dumps(
    {
        "error": {
            "type": "unavailable",
            "message": "fetch cannot run at deploy, while the module's top level runs",
        }
    }
).encode()


@dataclass(frozen=True, slots=True)
class PackagedFunction:
    wasm: bytes
    exports: dict[str, str]
    logs: list[tuple[int, str]] = field(default_factory=list)
    init_ms: float = 0.0


def ignore_type_declarations(source: str) -> str:
    """The source with its `import "x.d.ts";` lines blanked (same length, same positions)."""
    return _TYPE_DECLARATION_IMPORT.sub(_blank, source)


def _blank(match: re.Match[str]) -> str:
    return match.group(1) + re.sub(r"[^\n]", " ", match.group(2))


def import_refusal(specifier: str) -> str:
    """Why an import is refused, by kind of specifier."""
    if specifier.startswith(("npm:", "jsr:", "node:")):
        kind = f"{specifier.split(':', 1)[0]}: packages are not available"
    elif specifier.startswith(("http:", "https:", "data:", "file:")):
        kind = "modules are not fetched from URLs"
    elif specifier.startswith((".", "/")):
        kind = "only this one file is deployed"
    else:
        kind = "there are no packages for a bare name to resolve to"
    return (
        f"{kind}; a function is one file without imports (`import type` and "
        f'`import "....d.ts"` lines are accepted and ignored)'
    )


def clean_filename(name: object) -> str:
    """The file name shown in stack traces: the upload's base name, if it is a plain one."""
    if isinstance(name, str):
        base = name.replace("\\", "/").rsplit("/", 1)[-1]
        if _FILENAME.match(base):
            return base
    return DEFAULT_FILENAME


class JavaScriptPackager:
    """Turns sources into function modules; holds the engine's compiled init module.

    Thread-safe: deploys run in a thread pool, each init in its own store (and its
    own engine, so one deploy's timeout never interrupts another's).
    """

    def __init__(self, cache_dir: Path | None = None, scratch_dir: Path | None = None) -> None:
        """`cache_dir`: the engine build, shared by every server on the machine (it depends
        only on the sources); `scratch_dir`: this server's init runs (else the system's)."""
        self._cache_dir = cache_dir or default_cache_dir()
        self._scratch_dir = scratch_dir
        self._lock = threading.Lock()
        self._build: EngineBuild | None = None
        self._closed = False

    def close(self) -> None:
        """Let go of the engine build; a later `package` is refused."""
        with self._lock:
            self._closed = True
            self._build = None
        close_spare()

    def engine(self) -> EngineBuild:
        with self._lock:
            if self._closed:
                raise InternalError("the JavaScript packager is closed (the server is stopping)")
            if self._build is None:
                self._build = ensure_engine(self._cache_dir)
            return self._build

    def package(
        self,
        source: str,
        *,
        filename: str = DEFAULT_FILENAME,
        triggers: list[dict[str, Any]] | None = None,
        memory_limit_bytes: int = 128 * 1024 * 1024,
        timeout_ms: int = 10_000,
    ) -> PackagedFunction:
        """Package `source`; InvalidSource or InvalidTrigger when it cannot be deployed."""
        where = _Where(filename)
        if len(source.encode("utf-8", "surrogatepass")) > MAX_SOURCE_BYTES:
            raise InvalidSource(f"{where.invalid}: source over {MAX_SOURCE_BYTES} bytes")
        trigger_list = triggers if triggers is not None else [{"type": "http"}]
        for trigger in trigger_list:
            handler = trigger.get("handler")
            if handler is not None and (not isinstance(handler, str) or not handler):
                raise InvalidTrigger(
                    "Invalid trigger configuration: 'handler' must be the name of an export"
                )
        code = ignore_type_declarations(source)
        where.source = source
        if where.typescript:
            transformed = transform(code, filename, min(timeout_ms / 1000, TRANSFORM_TIMEOUT_S))
            code, where.positions = transformed.code, transformed.positions
            code = _EMPTY_IMPORT.sub(_blank, code)
        build = self.engine()
        request = {
            "prelude": PRELUDE.read_text("utf-8"),
            "source": code,
            "filename": where.engine_filename,
            "config": {"triggers": trigger_list},
        }
        started = time.perf_counter()
        run = _run_init(
            self._init_module_path(build),
            json.dumps(request).encode("utf-8"),
            memory_limit_bytes,
            timeout_ms,
            self._scratch_dir,
        )
        init_ms = (time.perf_counter() - started) * 1000
        report = _check_report(run, where, timeout_ms)
        _check_handlers(report, trigger_list)
        metadata = {
            "runtime": "javascript",
            "filename": filename,
            "triggers": trigger_list,
            "engine": build.key,
            "quickjs": QUICKJS_VERSION,
            "source": source,
        }
        if where.typescript:
            metadata["language"] = "typescript"
            metadata["javascript"] = code
        wasm = snapshot(
            build.path.read_bytes(),
            run.memory,
            run.globals,
            custom=[
                (METADATA_SECTION, json.dumps(metadata).encode("utf-8")),
                # Compiled as the shared engine plus this state: a deploy in well
                # under a second (runtime/restore.py).
                (MARKER_SECTION, b""),
            ],
        )
        return PackagedFunction(wasm, dict(report.get("exports", {})), run.logs, init_ms)

    def _init_module_path(self, build: EngineBuild) -> Path:
        """The engine with its globals exported, compiled for the init engine, cached."""
        path = build.path.parent / f"init-wasmtime-{version('wasmtime')}.cwasm"
        with self._lock:
            if not path.is_file():
                engine = _init_engine()
                module = wasmtime.Module(engine, exporting_globals(build.path.read_bytes()))
                partial = path.with_suffix(f".{os.getpid()}-{threading.get_ident()}.partial")
                partial.write_bytes(bytes(module.serialize()))
                partial.replace(path)
        return path


@dataclass(slots=True)
class _InitRun:
    code: int | None = None
    trap: str | None = None
    stdout: bytes = b""
    stderr: bytes = b""
    memory: bytes = b""
    globals: dict[int, int | float] = field(default_factory=dict)
    logs: list[tuple[int, str]] = field(default_factory=list)
    timed_out: bool = False


def _init_engine() -> wasmtime.Engine:
    config = wasmtime.Config()
    config.epoch_interruption = True
    return wasmtime.Engine(config)


def _run_init(
    module_path: Path,
    request: bytes,
    memory_limit_bytes: int,
    timeout_ms: int,
    scratch_dir: Path | None = None,
) -> _InitRun:
    engine = _init_engine()
    module = wasmtime.Module.deserialize_file(engine, str(module_path))
    run = _InitRun()
    linker = wasmtime.Linker(engine)
    linker.define_wasi()
    _define_init_host(linker, run)
    if scratch_dir is not None:
        scratch_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="wasmlet-js-init-", dir=scratch_dir) as tmp:
        stdin, stdout, stderr = (Path(tmp, name) for name in ("stdin", "stdout", "stderr"))
        stdin.write_bytes(request)
        wasi = wasmtime.WasiConfig()
        wasi.stdin_file = str(stdin)
        wasi.stdout_file = str(stdout)
        wasi.stderr_file = str(stderr)
        store = wasmtime.Store(engine)
        store.set_wasi(wasi)
        store.set_limits(memory_size=memory_limit_bytes)
        store.set_epoch_deadline(1)
        deadline = threading.Timer(timeout_ms / 1000, engine.increment_epoch)
        deadline.daemon = True
        deadline.start()
        try:
            instance = linker.instantiate(store, module)
            exports = instance.exports(store)
            init = exports[INIT_EXPORT]
            assert isinstance(init, wasmtime.Func)
            result = init(store)
            run.code = int(result) if isinstance(result, int) else -1
        except wasmtime.ExitTrap as exc:
            run.code = exc.code
        except wasmtime.Trap as exc:
            code = exc.trap_code
            run.timed_out = code is wasmtime.TrapCode.INTERRUPT
            run.trap = code.name.lower() if code else str(exc).splitlines()[0]
        finally:
            deadline.cancel()
        run.stdout = stdout.read_bytes() if stdout.exists() else b""
        run.stderr = stderr.read_bytes() if stderr.exists() else b""
        if run.code == 0 and run.trap is None:
            memory = exports["memory"]
            assert isinstance(memory, wasmtime.Memory)
            run.memory = bytes(memory.read(store, 0, memory.data_len(store)))
            for name, item in exports.items():
                if name.startswith(SNAPSHOT_GLOBAL_PREFIX) and isinstance(item, wasmtime.Global):
                    value = item.value(store)
                    assert isinstance(value, (int, float))
                    run.globals[int(name[len(SNAPSHOT_GLOBAL_PREFIX) :])] = value
    return run


def _define_init_host(linker: wasmtime.Linker, run: _InitRun) -> None:
    """The `wasmlet` imports during init: logs are kept; responses, queries and fetch refused."""
    i32 = wasmtime.ValType.i32()

    def log(caller: wasmtime.Caller, level: int, ptr: int, length: int) -> int:
        memory = caller.get("memory")
        if not isinstance(memory, wasmtime.Memory):
            return -1
        ptr, length = ptr & 0xFFFFFFFF, length & 0xFFFFFFFF
        if ptr + length > memory.data_len(caller):
            return -1
        text = bytes(memory.read(caller, ptr, ptr + length)).decode("utf-8", "replace")
        run.logs.append((level, text[:8192]))
        return 0

    def refuse(*_: int) -> int:
        return -1

    def copy_out(caller: wasmtime.Caller, ptr: int, length: int, data: bytes) -> int:
        memory = caller.get("memory")
        size = min(length & 0xFFFFFFFF, len(data))
        if not isinstance(memory, wasmtime.Memory) or (ptr & 0xFFFFFFFF) + size > memory.data_len(
            caller
        ):
            return -1
        memory.write(caller, data[:size], ptr & 0xFFFFFFFF)
        return size

    def db_query(*_: int) -> int:
        return len(_NO_DB_IN_INIT)

    def db_result(caller: wasmtime.Caller, ptr: int, length: int) -> int:
        return copy_out(caller, ptr, length, _NO_DB_IN_INIT)

    def http_request(*_: int) -> int:
        return len(_NO_HTTP_IN_INIT)

    def http_result(caller: wasmtime.Caller, ptr: int, length: int) -> int:
        return copy_out(caller, ptr, length, _NO_HTTP_IN_INIT)

    def func_type(params: int) -> wasmtime.FuncType:
        return wasmtime.FuncType([i32] * params, [i32])

    linker.define_func(HOST_MODULE, "log", func_type(3), log, access_caller=True)
    linker.define_func(HOST_MODULE, "set_status", func_type(1), refuse)
    linker.define_func(HOST_MODULE, "set_header", func_type(4), refuse)
    linker.define_func(HOST_MODULE, "db_query", func_type(4), db_query)
    linker.define_func(HOST_MODULE, "db_result", func_type(2), db_result, access_caller=True)
    linker.define_func(HOST_MODULE, "http_request", func_type(4), http_request)
    linker.define_func(HOST_MODULE, "http_result", func_type(2), http_result, access_caller=True)
    linker.define_func(HOST_MODULE, "http_body", func_type(2), refuse)


@dataclass(slots=True)
class _Where:
    """The file as it was deployed, and how the engine's positions map back to it."""

    filename: str
    source: str = ""
    positions: PositionMap | None = None

    @property
    def typescript(self) -> bool:
        return is_typescript(self.filename)

    @property
    def invalid(self) -> str:
        return "Invalid TypeScript" if self.typescript else "Invalid JavaScript"

    @property
    def engine_filename(self) -> str:
        """The name the engine knows: its own for transformed code whose lines differ."""
        if self.positions is not None and self.positions.layout is None:
            return self.filename + ".js"
        return self.filename

    def position(self, line: int, column: int | None) -> str:
        if self.positions is not None:
            mapped = self.positions.original(line, column)
            if mapped is None:
                return f"line {line} of the compiled JavaScript"
            line, column = mapped
        return f"line {line}, column {column}" if column else f"line {line}"

    def frame(self, text: str) -> str:
        """A stack frame, its engine file:line turned into the deployed file's."""
        positions = self.positions
        if positions is None:
            return text

        def original(match: re.Match[str]) -> str:
            mapped = positions.original(int(match.group(1)))
            return f"{self.filename}:{mapped[0]}" if mapped else match.group(0)

        return re.sub(re.escape(self.engine_filename) + r":(\d+)", original, text)

    def find_import(self, specifier: str) -> tuple[str, int | None]:
        """The import as written (the engine resolves `./x.js` to `x.js`) and its line."""
        wanted = _PARENT_PREFIX.sub("", specifier)
        for number, line in enumerate(self.source.splitlines(), 1):
            if not re.search(r"\b(?:import|from)\b", line):
                continue
            for match in _QUOTED.finditer(line):
                written = match.group(2)
                if written == specifier or _PARENT_PREFIX.sub("", written) == wanted:
                    return written, number
        return specifier, None


def _check_report(run: _InitRun, where: _Where, timeout_ms: int) -> dict[str, Any]:
    filename, invalid = where.filename, where.invalid
    if run.timed_out:
        raise InvalidSource(
            f"{invalid}: the top level of {filename} did not finish within "
            f"{timeout_ms / 1000:g}s (it runs once, at deploy)"
        )
    if run.trap is not None:
        raise InvalidSource(
            f"{invalid}: the engine stopped while loading {filename}: trap: {run.trap}"
        )
    try:
        report: dict[str, Any] = json.loads(run.stdout.decode("utf-8").strip().splitlines()[-1])
    except (UnicodeDecodeError, json.JSONDecodeError, IndexError) as exc:
        detail = run.stderr.decode("utf-8", "replace").strip()[-500:]
        raise InvalidSource(
            f"{invalid}: the engine gave no report for {filename} "
            f"(exit code {run.code}){': ' + detail if detail else ''}"
        ) from exc
    if report.get("ok") is True and run.code == 0:
        return report
    error = report.get("error") or {}
    name = error.get("name", "Error")
    message = error.get("message", "unknown error")
    kind = report.get("kind")
    if kind == "syntax" and name != "SyntaxError":
        kind = "load"  # an import that cannot be resolved is found while compiling
    refused = _REFUSED_IMPORT.match(str(message)) if kind == "load" else None
    if refused:
        specifier, line = where.find_import(refused.group(1))
        raise InvalidSource(
            f"{invalid}: import {json.dumps(specifier)} refused"
            f"{f' ({filename}: line {line})' if line else ''}: {import_refusal(specifier)}"
        )
    if kind == "syntax":
        line, column = report.get("line") or 0, report.get("column") or 0
        line = line or _stack_line(error, where.engine_filename)
        position = where.position(line, column or None) if line else "unknown position"
        raise InvalidSource(f"{invalid}: {name}: {message} ({filename}: {position})")
    if kind in ("load", "boot"):
        frame = where.frame(_first_frame(error.get("stack", "")))
        raise InvalidSource(
            f"{invalid}: the module failed to load: {name}: {message}"
            f"{f' ({frame})' if frame else ''}"
        )
    raise InvalidSource(f"{invalid}: the engine failed: {name}: {message}")


def _stack_line(error: dict[str, Any], filename: str) -> int:
    match = re.search(re.escape(filename) + r":(\d+)", str(error.get("stack", "")))
    return int(match.group(1)) if match else 0


def _first_frame(stack: str) -> str:
    for line in stack.splitlines():
        text = line.strip()
        if text.startswith("at "):
            return text
    return ""


def _check_handlers(report: dict[str, Any], triggers: list[dict[str, Any]]) -> None:
    for problem in report.get("problems", []):
        handler = problem.get("handler")
        kind = problem.get("type")
        if problem.get("named"):
            raise InvalidTrigger(
                f"Invalid trigger configuration: the {kind} trigger names handler "
                f"{handler!r}, but the module exports no function of that name"
            )
        raise InvalidSource(
            f"Invalid JavaScript: the module exports no function named {handler!r} "
            f"for its {kind} trigger (export async function {handler}(...) or a default export)"
        )
