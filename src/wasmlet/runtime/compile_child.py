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
from pathlib import Path

import wasmtime

from wasmlet.errors import InvalidWasm
from wasmlet.runtime.compiler import MEMORY_EXIT, WASM_MAGIC, content_key, write_atomically
from wasmlet.runtime.engine import describe_error, make_engine
from wasmlet.runtime.host import HostState, define_host_functions
from wasmlet.runtime.instrument import (
    RESERVED_PREFIX,
    check_reserved_exports,
    instrument_memory_growth,
)
from wasmlet.runtime.restore import encode_state, split
from wasmlet.runtime.wasmbin import WasmBinaryError

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


def build_artifact(engine: wasmtime.Engine, wasm: bytes, *, skeleton: bool = False) -> bytes:
    """The serialized module for `wasm`; InvalidWasm when it cannot be deployed.

    A `skeleton` (`restore.split`) carries the platform's own global exports: its
    module was checked for reserved names before it was split."""
    _validate(engine, wasm)
    if not skeleton:
        check_reserved_exports(wasm)
    try:
        module = wasmtime.Module(engine, instrument_memory_growth(wasm))
    except wasmtime.WasmtimeError as exc:
        raise InvalidWasm(
            f"Invalid WASM binary: this platform cannot run it: {describe_error(str(exc))}"
        ) from exc
    _check_imports(module)
    _check_abi(engine, module)
    return bytes(module.serialize())


def _validate(engine: wasmtime.Engine, wasm: bytes) -> None:
    if not wasm.startswith(WASM_MAGIC):
        raise InvalidWasm("Invalid WASM binary: missing the \\0asm header")
    try:
        wasmtime.Module.validate(engine, wasm)
    except wasmtime.WasmtimeError as exc:
        raise InvalidWasm(f"Invalid WASM binary: {describe_error(str(exc))}") from exc


def build_restore(engine: wasmtime.Engine, wasm: bytes, output: Path) -> bytes | None:
    """The restore artifact for snapshot module `wasm` (`restore.py`), its shared skeleton
    compiled into `output`'s directory if it is not there yet; None when the module
    cannot be split, or its skeleton not compiled: it is then compiled whole."""
    _validate(engine, wasm)
    check_reserved_exports(wasm)
    try:
        parts = split(wasm)
    except WasmBinaryError:
        return None
    base_key = content_key(parts.skeleton)
    base = output.with_name(f"{base_key}.cwasm")
    if not base.is_file():
        try:
            artifact = build_artifact(engine, parts.skeleton, skeleton=True)
        except InvalidWasm:
            return None
        write_atomically(base, artifact)
    return encode_state(base_key, parts.state)


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


def main(argv: list[str]) -> int:
    memory_mb, cpu_s = int(argv[0]), int(argv[1])
    set_limits(memory_mb, cpu_s)
    if len(argv) > 2:
        os.nice(int(argv[2]))  # a background compile yields the CPU to deploys and calls
    engine = make_engine()  # before the request arrives: a spare child is ready sooner
    stdin = sys.stdin.buffer
    header = json.loads(stdin.readline() or b"null")
    if not isinstance(header, dict) or not isinstance(header.get("output"), str):
        return 2  # the server went away before sending a request
    wasm = stdin.read()
    restore_output = header.get("restore_output")
    try:
        restore = None
        if isinstance(restore_output, str):
            restore = build_restore(engine, wasm, Path(header["output"]))
        if restore is not None:
            write_atomically(Path(str(restore_output)), restore)
        else:
            write_atomically(Path(header["output"]), build_artifact(engine, wasm))
        result: dict[str, object] = {"ok": True, "restored": restore is not None}
    except InvalidWasm as exc:
        result = {"ok": False, "message": exc.message}
    sys.stdout.write(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except MemoryError:
        os._exit(MEMORY_EXIT)
