"""The JavaScript packager is a part of `Services`: one per server, built lazily, closed at stop."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from wasmlet.api.services import Services
from wasmlet.errors import InternalError
from wasmlet.settings import Settings

SOURCE = "export default async function handler(request) { return new Response('hi') }"


def test_each_server_owns_its_packager_and_closes_it(tmp_path: Path) -> None:
    async def scenario() -> None:
        first = await Services.start(Settings(data_dir=tmp_path / "a", workers=1))
        second = await Services.start(Settings(data_dir=tmp_path / "b", workers=1))
        try:
            packager = first.javascript()
            assert first.javascript() is packager  # built once, then kept
            assert second.javascript() is not packager  # not one for the whole process
            assert await asyncio.to_thread(packager.package, SOURCE)
            assert (tmp_path / "a" / "js").is_dir()  # its scratch space is in its data dir
            assert not (tmp_path / "b" / "js").exists()
        finally:
            await first.close()
            await second.close()
        with pytest.raises(InternalError, match="closed"):
            packager.package(SOURCE)

    asyncio.run(scenario())
