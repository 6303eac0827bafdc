"""A node's compiled modules on both backends: a miss is fetched and compiled once
however many callers want it; what cannot be built is `ModuleUnavailable`, remembered."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.wasmgen import says
from wasmlet.errors import DbUnavailable, ModuleUnavailable
from wasmlet.registry.modules import LocalModules
from wasmlet.runtime.compiler import CompiledModule, ModuleCompiler, content_key
from wasmlet.store.base import Row, Store

REFUSAL_TTL_S = 30.0


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class CountingCompiler(ModuleCompiler):
    """The real compiler, counting its compiles; `gate` holds them until set."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.compiles = 0
        self.gate = threading.Event()
        self.gate.set()

    def compile(self, wasm: bytes) -> CompiledModule:
        self.compiles += 1
        self.gate.wait(30)
        return super().compile(wasm)


@dataclass
class Setup:
    modules: LocalModules
    compiler: CountingCompiler
    store: Store
    clock: FakeClock


@pytest.fixture
def setup(store: Store, tmp_path: Path) -> Iterator[Setup]:
    store.migrate()
    compiler = CountingCompiler(tmp_path / "modules")
    clock = FakeClock()
    modules = LocalModules(store, compiler, clock=clock, refusal_ttl_s=REFUSAL_TTL_S)
    yield Setup(modules, compiler, store, clock)
    compiler.close()


def stored(store: Store, wasm: bytes, key: str | None = None) -> str:
    key = key or content_key(wasm)
    store.execute("put_module", key=key, wasm=wasm, now=0.0)
    return key


def test_a_miss_is_compiled_once_for_every_caller(setup: Setup) -> None:
    key = stored(setup.store, says("once"))
    assert not setup.modules.is_ready(key)

    async def many() -> None:
        setup.compiler.gate.clear()
        callers = [asyncio.create_task(setup.modules.ensure(key)) for _ in range(20)]
        await asyncio.sleep(0.1)
        setup.compiler.gate.set()
        await asyncio.gather(*callers)

    asyncio.run(many())
    assert setup.compiler.compiles == 1
    assert setup.modules.is_ready(key)
    assert Path(setup.modules.path(key)).is_file()


def test_what_cannot_be_built_is_unavailable_and_remembered(setup: Setup) -> None:
    modules, clock = setup.modules, setup.clock
    missing = content_key(b"never stored")
    spoiled = stored(setup.store, b"\0asm\x01\0\0\0\xff", key=content_key(says("real")))
    refused = stored(setup.store, b"\0asm\x01\0\0\0\xff")
    for key, words in ((missing, "no longer stored"), (spoiled, "does not match")):
        with pytest.raises(ModuleUnavailable, match=words):
            asyncio.run(modules.ensure(key))
    with pytest.raises(ModuleUnavailable, match="cannot be compiled"):
        asyncio.run(modules.ensure(refused))
    assert setup.compiler.compiles == 1
    with pytest.raises(ModuleUnavailable, match="cannot be compiled"):
        asyncio.run(modules.ensure(refused))
    assert setup.compiler.compiles == 1  # remembered: no compile process per call
    clock.now += REFUSAL_TTL_S
    with pytest.raises(ModuleUnavailable):
        asyncio.run(modules.ensure(refused))
    assert setup.compiler.compiles == 2


def test_an_unreachable_database_is_not_remembered(
    setup: Setup, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = stored(setup.store, says("later"))
    real = setup.store.fetch_one

    def unavailable(query: str, /, **params: Any) -> Row | None:
        raise DbUnavailable("Database unavailable: connection refused")

    monkeypatch.setattr(setup.store, "fetch_one", unavailable)
    with pytest.raises(DbUnavailable):
        asyncio.run(setup.modules.ensure(key))
    monkeypatch.setattr(setup.store, "fetch_one", real)
    asyncio.run(setup.modules.ensure(key))
    assert setup.modules.is_ready(key)
