"""GET /api/v1/scheduler/nodes: the processes that share the database, and the maintenance leader."""

from __future__ import annotations

import pytest

from tests.integration.api_fixtures import ApiEnv


async def test_nodes_lists_running_and_stopped_nodes_with_the_leader(api: ApiEnv) -> None:
    cluster = api.services.cluster
    async with api.admin() as client:
        response = await client.get("/api/v1/scheduler/nodes")
        assert response.status_code == 200
        assert response.json() == {"items": [], "leader": None}

        await cluster.register()
        await cluster.step()
        body = (await client.get("/api/v1/scheduler/nodes")).json()
        assert body["leader"] == cluster.node_id
        [node] = body["items"]
        assert node["id"] == cluster.node_id and node["state"] == "running" and node["leader"] is True
        assert node["pid"] > 0 and node["host"] and node["version"]

        await cluster.stop()
        body = (await client.get("/api/v1/scheduler/nodes")).json()
        assert [n["state"] for n in body["items"]] == ["stopped"]
        assert body["leader"] is None


@pytest.mark.parametrize("who", ["member", "anonymous"])
async def test_nodes_are_for_admins_only(api: ApiEnv, who: str) -> None:
    client = api.member() if who == "member" else api.client()
    async with client:
        response = await client.get("/api/v1/scheduler/nodes")
    assert response.status_code == (403 if who == "member" else 401)
