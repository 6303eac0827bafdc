"""Concurrency limits: over the limit a synchronous call gets 429 at once."""

from __future__ import annotations

import asyncio
from collections import Counter

import httpx

from tests.conftest import ServerFactory
from tests.support.build import wat
from tests.support.server import ServerProcess


async def _flood(
    server: ServerProcess, name: str, count: int, payload: bytes
) -> tuple[Counter[int], dict[int, set[str]], int]:
    limits = httpx.Limits(max_connections=count, max_keepalive_connections=0)
    statuses: Counter[int] = Counter()
    retry_after: dict[int, set[str]] = {}
    health_status = 0
    async with httpx.AsyncClient(limits=limits, timeout=60) as client:

        async def one() -> None:
            response = await client.post(
                f"{server.url}/functions/v1/invoke/{name}",
                content=payload,
                headers=server.anon_headers(),
            )
            statuses[response.status_code] += 1
            if "retry-after" in response.headers:
                retry_after.setdefault(response.status_code, set()).add(
                    response.headers["retry-after"]
                )

        async def health_check() -> None:
            # Asked while the flood is on; answered at all, not fast: the client's own
            # loop is as busy as the server on a loaded machine.
            nonlocal health_status
            await asyncio.sleep(3)
            async with httpx.AsyncClient(timeout=120) as other:
                health_status = (await other.get(server.url + "/health")).status_code

        await asyncio.gather(health_check(), *(one() for _ in range(count)))
    return statuses, retry_after, health_status


def test_thousand_concurrent_calls_admit_exactly_the_global_limit(
    start_server: ServerFactory,
) -> None:
    with start_server(WASMLET_GLOBAL_CONCURRENCY="100") as server:
        name = "slow"
        assert server.deploy(name, wat("sleep"), {"timeout_ms": 10_000}).status_code == 201
        statuses, retry_after, health = asyncio.run(_flood(server, name, 1000, b"6000"))
        assert statuses[429] == 900, statuses
        admitted = sum(n for status, n in statuses.items() if status != 429)
        assert admitted == 100, statuses
        # Admitted calls either ran (200) or found no free worker within their budget (504).
        assert set(statuses) <= {200, 429, 504}, statuses
        assert statuses[200] >= 2
        assert retry_after[429] == {"1"}
        assert health == 200
        assert (
            server.metric("functions_errors_total", name=name, error_type="too_many_requests")
            == 900
        )
        assert server.metric("functions_in_flight") == 0
        # Healthy afterwards: the next call runs normally.
        assert server.invoke(name, b"1").status_code == 200


def test_per_function_limit(server: ServerProcess, fname: str) -> None:
    server.deploy(fname, wat("sleep"), {"max_concurrency": 2, "timeout_ms": 10_000})
    other = fname + "-other"
    server.deploy(other, wat("hello"))
    statuses, retry_after, _ = asyncio.run(_flood(server, fname, 10, b"4000"))
    assert statuses == Counter({429: 8, 200: 2}), statuses
    assert retry_after[429] == {"1"}
    # Another function is not held back by this one's limit.
    assert server.invoke(other).status_code == 200
