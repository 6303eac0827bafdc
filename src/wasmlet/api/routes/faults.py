"""Test-only faults, mounted by the app factory when WASMLET_TEST_FAULTS=1 (never in the schema).

`GET /_test/faults/internal` raises an exception no handler knows, carrying the kinds
of detail (a file path, a line number, a repr) that must stay in the server's log.
`POST /_test/faults/scheduler/stop` stops this node's scheduler for good, as a stuck
scheduler would: no more ticks, no more heartbeats.
"""

from __future__ import annotations

from fastapi import APIRouter, Request

from wasmlet.api.routes.deps import services_of

router = APIRouter(include_in_schema=False)

INJECTED = "injected fault: File \"/srv/wasmlet/secret.py\", line 7, {'type': 'boom'}"


@router.get("/_test/faults/internal")
async def internal_fault() -> None:
    raise RuntimeError(INJECTED)


@router.post("/_test/faults/scheduler/stop")
async def stop_scheduler(request: Request) -> dict[str, bool]:
    await services_of(request).scheduler.close()
    return {"stopped": True}
