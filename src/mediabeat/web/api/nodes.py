"""The cluster API: which `serve` and `worker` processes share this database, and who leads maintenance."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Request
from pydantic import BaseModel

from mediabeat.scheduler.cluster import ClusterCoordinator
from mediabeat.web.deps import SchedulerViewer
from mediabeat.web.errors import error_responses

router = APIRouter(prefix="/api/v1/scheduler", tags=["scheduler"])


class NodeOut(BaseModel):
    id: str
    host: str
    pid: int
    version: str
    role: str
    state: str
    started_at: datetime
    heartbeat_at: datetime
    stopped_at: datetime | None
    leader: bool


class NodeList(BaseModel):
    items: list[NodeOut]
    leader: str | None


@router.get(
    "/nodes",
    response_model=NodeList,
    summary="Every node (running, dead or stopped) and the maintenance leader",
    responses=error_responses(401, 403),
)
async def list_nodes(request: Request, _: SchedulerViewer) -> NodeList:
    cluster: ClusterCoordinator = request.app.state.services.cluster
    leader = await cluster.leader()
    items = [
        NodeOut(
            id=node.id,
            host=node.host,
            pid=node.pid,
            version=node.version,
            role=node.role,
            state=node.state,
            started_at=node.started_at,
            heartbeat_at=node.heartbeat_at,
            stopped_at=node.stopped_at,
            leader=node.id == leader,
        )
        for node in await cluster.list_nodes()
    ]
    return NodeList(items=items, leader=leader)
