"""GET /functions/v1/nodes: every node serving from this database, as each last beat."""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from wasmlet.api.auth import require_service_key
from wasmlet.api.openapi import errors
from wasmlet.api.routes.deps import services_of

router = APIRouter(tags=["nodes"])


class NodeView(BaseModel):
    id: str = Field(description="Node id, new at each start (also the owner of its job leases)")
    address: str = Field(description="host:port the node advertises (WASMLET_NODE_ADDRESS)")
    version: str = Field(description="wasmlet version the node runs")
    started_at: float = Field(description="Start time, Unix seconds")
    heartbeat_at: float = Field(description="Last heartbeat, Unix seconds (the node's clock)")
    heartbeat_age_s: float = Field(description="Seconds since that heartbeat (this node's clock)")
    status: str = Field(description="`live`, or `stale` when silent for over `stale_after_s`")
    workers: int = Field(description="Worker processes configured")
    workers_alive: int = Field(description="Worker processes alive at the last heartbeat")
    in_flight: int = Field(description="Invocations running on the node at the last heartbeat")
    self: bool = Field(description="Whether this is the node that answered")


class NodeList(BaseModel):
    nodes: list[NodeView]
    heartbeat_s: float = Field(description="Seconds between a node's heartbeats")
    stale_after_s: float = Field(description="A node silent this long is `stale`")
    forget_after_s: float = Field(description="A node silent this long is removed")


@router.get("/functions/v1/nodes", response_model=NodeList, responses=errors(401))
async def list_nodes(request: Request) -> NodeList:
    """Nodes sharing this database, oldest first (service key).

    A node that stops cleanly removes itself; one that dies is `stale` once its last
    heartbeat is `stale_after_s` old, and gone after `forget_after_s`."""
    services = services_of(request)
    require_service_key(request, services.keys)
    heartbeat = services.nodes
    rows = await run_in_threadpool(heartbeat.list)
    return NodeList(
        nodes=[NodeView(**row) for row in rows],
        heartbeat_s=heartbeat.heartbeat_s,
        stale_after_s=heartbeat.stale_after_s,
        forget_after_s=heartbeat.forget_s,
    )
