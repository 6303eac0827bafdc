"""The body of one compile process: validate, check, instrument and compile one module.

Compiling is work the tenant controls (200,000 functions, one huge body), so it never
runs in the server. `compiler.py` starts `python -m wasmlet.runtime.compile_child`
with its limits as arguments; the process sets them on itself before it reads any
input, then reads one request from stdin: a JSON header line (where to write the
artifact) followed by the module's bytes up to EOF. It writes the serialized module
to that path (atomically), prints one JSON line on stdout and exits:

    {"ok": true}
    {"ok": false, "message": "Invalid WASM binary: ..."}

Hitting a limit ends the process instead: RLIMIT_DATA makes an allocation fail
(wasmtime aborts, Python exits with `MEMORY_EXIT`), RLIMIT_CPU sends SIGXCPU. The
parent turns those ends into messages.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import tempfile
from pathlib import Path

import wasmtime

from wasmlet.errors import InvalidWasm
from wasmlet.runtime.compiler import MEMORY_EXIT, WASM_MAGIC
from wasmlet.runtime.engine import describe_error, make_engine
from wasmlet.runtime.host import HostState, define_host_functions
from wasmlet.runtime.instrument import RESERVED_PREFIX, instrument_memory_growth
from wasmlet.runtime.wasmbin import EXPORT, Reader, WasmBinaryError, sections

MB = 1024 * 1024


def set_limits(memory_mb: int, cpu_s: int) -> None:
    """Cap this process's data segment and CPU time; no core dumps.

    RLIMIT_DATA, not RLIMIT_AS: the pooling allocator reserves ~34 GB of address space
    (inaccessible until an instance uses it), which RLIMIT_AS counts and RLIMIT_DATA
    does not; every heap allocation (brk and private writable mmap) counts in both.
    """
    memory = memory_mb * MB
    resource.setrlimit(resource.RLIMIT_DATA, (memory, memory))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_s, cpu_s + 1))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def build_artifact(engine: wasmtime.Engine, wasm: bytes) -> bytes:
    """The serialized module for `wasm`; InvalidWasm when it cannot be deployed."""
    if not wasm.startswith(WASM_MAGIC):
        raise InvalidWasm("Invalid WASM binary: missing the \\0asm header")
    try:
        wasmtime.Module.validate(engine, wasm)
    except wasmtime.WasmtimeError as exc:
        raise InvalidWasm(f"Invalid WASM binary: {describe_error(str(exc))}") from exc
    _check_reserved_exports(wasm)
    try:
        module = wasmtime.Module(engine, instrument_memory_growth(wasm))
    except wasmtime.WasmtimeError as exc:
        raise InvalidWasm(
            f"Invalid WASM binary: this platform cannot run it: {describe_error(str(exc))}"
        ) from exc
    _check_imports(module)
    _check_abi(engine, module)
    return bytes(module.serialize())


def _check_reserved_exports(wasm: bytes) -> None:
    """Refuse exports in the platform's names (checked before instrumentation adds one)."""
    try:
        for section in sections(wasm):
            if section.id != EXPORT:
                continue
            reader = Reader(wasm, section.start, section.end)
            for _ in range(reader.uleb()):
                name = reader.name()
                reader.byte()
                reader.uleb()
                if name.startswith(RESERVED_PREFIX):
                    raise InvalidWasm(
                        f"Invalid WASM binary: export {name!r} uses the platform's reserved "
                        f"prefix {RESERVED_PREFIX!r}"
                    )
    except (WasmBinaryError, UnicodeDecodeError) as exc:
        raise InvalidWasm(f"Invalid WASM binary: unreadable export section ({exc})") from exc


def _check_imports(module: wasmtime.Module) -> None:
    for item in module.imports:
        for part in (item.module, item.name or ""):
            if part.startswith(RESERVED_PREFIX):
                raise InvalidWasm(
                    f"Invalid WASM binary: import {item.module!r} {item.name!r} uses the "
                    f"platform's reserved prefix {RESERVED_PREFIX!r}"
                )


def _check_abi(engine: wasmtime.Engine, module: wasmtime.Module) -> None:
    start = [e for e in module.exports if e.name == "_start"]
    if not start or not isinstance(start[0].type, wasmtime.FuncType):
        raise InvalidWasm("Invalid WASM binary: not a WASI command module (no _start export)")
    memory = [e for e in module.exports if e.name == "memory"]
    if not memory or not isinstance(memory[0].type, wasmtime.MemoryType):
        raise InvalidWasm("Invalid WASM binary: no exported memory")
    linker = wasmtime.Linker(engine)
    linker.define_wasi()
    define_host_functions(linker, lambda: HostState(log_budget=0))
    try:
        linker.instantiate_pre(module)
    except wasmtime.WasmtimeError as exc:
        raise InvalidWasm(f"Invalid WASM binary: {describe_error(str(exc))}") from exc


def write_atomically(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".cwasm")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def main(argv: list[str]) -> int:
    memory_mb, cpu_s = int(argv[0]), int(argv[1])
    set_limits(memory_mb, cpu_s)
    engine = make_engine()  # before the request arrives: a spare child is ready sooner
    stdin = sys.stdin.buffer
    header = json.loads(stdin.readline() or b"null")
    if not isinstance(header, dict) or not isinstance(header.get("output"), str):
        return 2  # the server went away before sending a request
    wasm = stdin.read()
    try:
        write_atomically(Path(header["output"]), build_artifact(engine, wasm))
        result: dict[str, object] = {"ok": True}
    except InvalidWasm as exc:
        result = {"ok": False, "message": exc.message}
    sys.stdout.write(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except MemoryError:
        os._exit(MEMORY_EXIT)
