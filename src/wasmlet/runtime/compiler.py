"""Validation, instrumentation and compilation of deployed modules.

Deploy is where a module is validated, checked against guest ABI v1, instrumented
(`instrument.py`) and compiled. The compiled artifact is cached on disk under the
engine fingerprint and the content hash of the deployed bytes, so a restart, a
redeploy of the same bytes and every worker load it instead of compiling again.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import wasmtime

from wasmlet.errors import InvalidWasm
from wasmlet.runtime.engine import engine_fingerprint, make_engine
from wasmlet.runtime.host import HostState, define_host_functions
from wasmlet.runtime.instrument import instrument_memory_growth

WASM_MAGIC = b"\0asm"


@dataclass(frozen=True, slots=True)
class CompiledModule:
    key: str
    path: Path


def content_key(wasm: bytes) -> str:
    return hashlib.sha256(wasm).hexdigest()


class ModuleCompiler:
    """Owns the on-disk cache of compiled modules for one engine configuration."""

    def __init__(self, cache_root: Path) -> None:
        self._dir = cache_root / engine_fingerprint()
        self._dir.mkdir(parents=True, exist_ok=True)
        self._engine = make_engine()
        self._linker = wasmtime.Linker(self._engine)
        self._linker.define_wasi()
        define_host_functions(self._linker, lambda: HostState(log_budget=0))

    def path_for(self, key: str) -> Path:
        return self._dir / f"{key}.cwasm"

    def is_cached(self, key: str) -> bool:
        return self.path_for(key).is_file()

    def compile(self, wasm: bytes) -> CompiledModule:
        """Validate and compile `wasm`, or load it from the cache; InvalidWasm if bad."""
        key = content_key(wasm)
        path = self.path_for(key)
        if path.is_file():
            return CompiledModule(key, path)
        if not wasm.startswith(WASM_MAGIC):
            raise InvalidWasm("Invalid WASM binary: missing the \\0asm header")
        try:
            wasmtime.Module.validate(self._engine, wasm)
        except wasmtime.WasmtimeError as exc:
            raise InvalidWasm(f"Invalid WASM binary: {_first_line(exc)}") from exc
        module = wasmtime.Module(self._engine, instrument_memory_growth(wasm))
        self._check_abi(module)
        _atomic_write(path, bytes(module.serialize()))
        return CompiledModule(key, path)

    def _check_abi(self, module: wasmtime.Module) -> None:
        start = [e for e in module.exports if e.name == "_start"]
        if not start or not isinstance(start[0].type, wasmtime.FuncType):
            raise InvalidWasm("Invalid WASM binary: not a WASI command module (no _start export)")
        memory = [e for e in module.exports if e.name == "memory"]
        if not memory or not isinstance(memory[0].type, wasmtime.MemoryType):
            raise InvalidWasm("Invalid WASM binary: no exported memory")
        try:
            self._linker.instantiate_pre(module)
        except wasmtime.WasmtimeError as exc:
            raise InvalidWasm(f"Invalid WASM binary: {_first_line(exc)}") from exc


def _first_line(exc: Exception) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


def _atomic_write(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".cwasm")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
