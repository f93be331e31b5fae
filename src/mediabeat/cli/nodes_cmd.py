"""`mediabeat nodes`: the serve and worker processes of the cluster."""

from __future__ import annotations

from typing import Annotated

import typer

from mediabeat.app import Services
from mediabeat.cli.common import print_json, table, when, with_services
from mediabeat.domain.scheduler import NodeRecord

app = typer.Typer(help="Cluster nodes: every serve and worker process.", no_args_is_help=True)


async def _nodes_and_leader(services: Services) -> tuple[list[NodeRecord], str | None]:
    return await services.cluster.list_nodes(), await services.cluster.leader()


@app.command("list")
def list_nodes(as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts")] = False) -> None:
    """List nodes: running ones first, with their last heartbeat and which one holds the maintenance lease."""
    nodes, leader = with_services(_nodes_and_leader)
    if as_json:
        print_json([{**n.as_dict(), "leader": n.id == leader} for n in nodes])
        return
    table(
        ["node", "role", "state", "host", "pid", "version", "started", "heartbeat", "leader"],
        [
            [
                n.id,
                n.role,
                n.state,
                n.host,
                n.pid,
                n.version,
                when(n.started_at),
                when(n.heartbeat_at),
                "yes" if n.id == leader else "",
            ]
            for n in nodes
        ],
    )
