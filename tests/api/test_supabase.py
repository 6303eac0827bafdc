"""supabase-py's functions client, pointed at wasmlet, invokes a function."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from supabase_functions import AsyncFunctionsClient, SyncFunctionsClient
from supabase_functions.errors import FunctionsHttpError

from tests.support.build import wat
from tests.support.server import ServerProcess


def test_supabase_sync_client_invokes_and_sees_the_body(server: ServerProcess, fname: str) -> None:
    server.deploy(fname, wat("echo"), {"response_content_type": "application/json"})
    with httpx.Client() as http:
        client = SyncFunctionsClient(
            url=f"{server.url}/functions/v1",
            headers={"Authorization": f"Bearer {server.anon_key}"},
            http_client=http,
        )
        data = client.invoke(fname, {"body": {"name": "Functions"}, "responseType": "json"})
        text = client.invoke(fname, {"body": "plain", "method": "PUT"})
    assert data == {"name": "Functions"}
    assert text == b"plain"


def test_supabase_client_sees_errors(server: ServerProcess, fname: str) -> None:
    server.deploy(fname, wat("trap"))
    with httpx.Client() as http:
        client = SyncFunctionsClient(
            url=f"{server.url}/functions/v1",
            headers={"apikey": server.anon_key},
            http_client=http,
        )
        with pytest.raises(FunctionsHttpError) as raised:
            client.invoke(fname)
    assert raised.value.status == 500


def test_supabase_async_client(server: ServerProcess, fname: str) -> None:
    server.deploy(fname, wat("hello"))

    async def call() -> object:
        async with httpx.AsyncClient() as http:
            client = AsyncFunctionsClient(
                url=f"{server.url}/functions/v1",
                headers={"Authorization": f"Bearer {server.anon_key}"},
                http_client=http,
            )
            return await client.invoke(fname)

    assert asyncio.run(call()) == b"Hello, wasmlet!"
