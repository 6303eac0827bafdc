"""Test-only faults, mounted by the app factory when WASMLET_TEST_FAULTS=1 (never in the schema).

`GET /_test/faults/internal` raises an exception no handler knows, carrying the kinds
of detail (a file path, a line number, a repr) that must stay in the server's log.
"""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(include_in_schema=False)

INJECTED = "injected fault: File \"/srv/wasmlet/secret.py\", line 7, {'type': 'boom'}"


@router.get("/_test/faults/internal")
async def internal_fault() -> None:
    raise RuntimeError(INJECTED)
