"""The wasmtime engine configuration shared by the compiler and every worker.

Serialized modules only load into an engine configured the same way, so the
configuration lives here once and its fingerprint names the compiled-module cache.
"""

from __future__ import annotations

import hashlib
from functools import cache
from importlib.metadata import version

import wasmtime

# Bump when the engine configuration or the deploy-time instrumentation changes.
ENGINE_LAYOUT = 1
MAX_WASM_STACK = 1 << 20


def make_engine() -> wasmtime.Engine:
    config = wasmtime.Config()
    config.epoch_interruption = True
    config.cranelift_opt_level = "speed"
    config.max_wasm_stack = MAX_WASM_STACK
    config.parallel_compilation = False
    return wasmtime.Engine(config)


@cache
def engine_fingerprint() -> str:
    """Names compiled artifacts: the wasmtime version plus our configuration layout."""
    raw = f"wasmtime-{version('wasmtime')}-layout-{ENGINE_LAYOUT}"
    return hashlib.sha256(raw.encode()).hexdigest()[:16]
