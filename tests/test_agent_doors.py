"""The agent tools and routes as callers see them: MCP in-process, REST on a real port.

Both doors end in the same AgentManager; these tests check the doors' shapes: arguments,
results, error texts and problems, and who may call what.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from api_support import ApiServer, serving
from engine_support import hub_on
from mcp import Client
from mcp_support import WAIT, call, failing, text
from test_mcp_http import mcp_client
from test_mcp_http import serving as serving_mcp

from aop_mcp.agents.spec import parse_spec
from aop_mcp.mcp.server import McpDoor, create_mcp
from aop_mcp.security.principal import Role

pytestmark = pytest.mark.anyio

REMOTE = {
    "name": "remote",
    "kind": "mcp",
    "capabilities": ["summarize"],
    "config": {
        "url": "http://127.0.0.1:9/mcp",
        "tool": "summarize",
        "headers": {"Authorization": "Bearer s3cret"},
    },
}
PULLER = {"name": "puller", "kind": "pull", "capabilities": ["translate"]}


# --- MCP ------------------------------------------------------------------------------------


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[Client]:
    async with hub_on(tmp_path) as hub:
        door: McpDoor = create_mcp()
        async with door.attached(hub), Client(door.server) as connected:
            yield connected


async def test_mcp_register_update_get_with_history_and_deregister(client: Client) -> None:
    registered = await call(client, "agent_register", **REMOTE, max_concurrency=2)
    assert (registered["version"], registered["health"], registered["active"]) == (1, "healthy", 0)
    assert registered["breaker"] == {"state": "closed", "failures": 0, "open_until": None}
    assert registered["config"]["headers"] == {"Authorization": "***"}  # never shown
    updated = await call(client, "agent_update", name="remote", weight=3)
    assert (updated["version"], updated["weight"], updated["max_concurrency"]) == (2, 3, 2)
    detail = await call(client, "agent_get", name="remote", include_history=True)
    assert [v["weight"] for v in detail["history"]] == [1, 3]
    gone = await call(client, "agent_deregister", name="remote")
    assert gone["deregistered_at"] is not None
    assert (await call(client, "agent_list"))["agents"] == []


async def test_mcp_list_filters_and_heartbeat(client: Client) -> None:
    await call(client, "agent_register", **REMOTE)
    await call(client, "agent_register", **PULLER)
    names = [a["name"] for a in (await call(client, "agent_list"))["agents"]]
    assert names == ["puller", "remote"]
    by_capability = await call(client, "agent_list", capability="translate")
    assert [a["name"] for a in by_capability["agents"]] == ["puller"]
    by_kind = await call(client, "agent_list", kind="mcp", health="healthy")
    assert [a["name"] for a in by_kind["agents"]] == ["remote"]
    beat = await call(client, "agent_heartbeat", name="puller")
    assert beat["last_heartbeat_at"] is not None


async def test_mcp_errors_name_the_field_and_say_what_to_do(client: Client) -> None:
    invalid = await failing(
        client, "agent_register", name="remote", kind="mcp", capabilities=["x"], config={}
    )
    assert "config.tool" in invalid
    assert "Fix every field listed" in invalid
    await call(client, "agent_register", **REMOTE)
    assert "already registered" in await failing(client, "agent_register", **REMOTE)
    assert "field 'kind'" in await failing(client, "agent_update", name="remote", kind="pull")
    missing = await failing(client, "agent_get", name="ghost")
    assert "agent 'ghost' does not exist" in missing
    assert "agent_list" in missing


async def test_mcp_viewer_is_refused_and_an_agent_token_may_only_heartbeat(
    tmp_path: Path,
) -> None:
    async with serving_mcp(tmp_path) as served:
        _, viewer = await served.hub.tokens.create(Role.VIEWER, "watcher")
        _, agent = await served.hub.tokens.create(Role.AGENT, "puller")
        async with mcp_client(served.url, viewer) as as_viewer:
            with anyio.fail_after(WAIT):
                refused = await as_viewer.call_tool("agent_register", dict(PULLER))
            assert refused.is_error
            assert "role is viewer" in text(refused)
        async with mcp_client(served.url, agent) as as_agent:
            with anyio.fail_after(WAIT):
                refused = await as_agent.call_tool("agent_register", dict(PULLER))
            assert "operator or admin" in text(refused)
            await served.hub.agents.register(parse_spec(PULLER))
            beat = await call(as_agent, "agent_heartbeat", name="puller")
            assert beat["name"] == "puller"
            await served.hub.agents.register(parse_spec({**PULLER, "name": "other"}))
            spoofed = await as_agent.call_tool("agent_heartbeat", {"name": "other"})
            assert spoofed.is_error
            assert "belongs to agent 'puller'" in text(spoofed)


# --- REST -----------------------------------------------------------------------------------


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[ApiServer]:
    async with serving(tmp_path) as running:
        yield running


def problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    return response.json()


async def test_rest_register_read_update_versions_and_deregister(api: ApiServer) -> None:
    async with api.client() as http:
        created = await http.post("/agents", json=REMOTE)
        assert created.status_code == 201, created.text
        assert created.headers["location"].endswith("/api/v1/agents/remote")
        assert created.json()["config"]["headers"] == {"Authorization": "***"}
        settings = {k: v for k, v in REMOTE.items() if k != "name"} | {"weight": 2}
        updated = await http.put("/agents/remote", json=settings)
        assert (updated.json()["version"], updated.json()["weight"]) == (2, 2)
        versions = (await http.get("/agents/remote/versions")).json()["items"]
        assert [v["version"] for v in versions] == [1, 2]
        listed = (await http.get("/agents", params={"capability": "summarize"})).json()
        assert [a["name"] for a in listed["items"]] == ["remote"]
        got = (await http.get("/agents/remote")).json()
        assert (got["health"], got["active"], got["breaker"]["state"]) == ("healthy", 0, "closed")
        gone = await http.delete("/agents/remote")
        assert gone.json()["deregistered_at"] is not None
        assert (await http.get("/agents")).json()["items"] == []


async def test_rest_errors_are_problems_naming_the_field(api: ApiServer) -> None:
    async with api.client() as http:
        bad = {**REMOTE, "config": {"url": "http://x"}}
        body = problem(await http.post("/agents", json=bad), 422)
        assert "config.tool" in {item["field"] for item in body["errors"]}
        await http.post("/agents", json=REMOTE)
        problem(await http.post("/agents", json=REMOTE), 409)
        kind_change = {"kind": "pull", "capabilities": ["x"]}
        body = problem(await http.put("/agents/remote", json=kind_change), 422)
        assert body["errors"][0]["field"] == "kind"
        body = problem(await http.get("/agents/ghost"), 404)
        assert body["type"] == "urn:aop-mcp:problem:agent-not-found"
        problem(await http.get("/agents", params={"health": "sleepy"}), 400)


async def test_rest_roles_viewer_reads_agent_only_heartbeats(api: ApiServer) -> None:
    async with api.client() as http:
        await http.post("/agents", json=PULLER)
    _, puller_token = await api.hub.tokens.create(Role.AGENT, "puller")
    async with api.client("viewer") as viewer:
        assert (await viewer.get("/agents")).status_code == 200
        body = problem(await viewer.post("/agents", json=REMOTE), 403)
        assert "viewer" in body["detail"]
        problem(await viewer.post("/agents/puller/heartbeat"), 403)
    async with api.client(puller_token) as agent:
        problem(await agent.delete("/agents/puller"), 403)
        beat = await agent.post("/agents/puller/heartbeat")
        assert beat.status_code == 200, beat.text
        assert beat.json()["last_heartbeat_at"] is not None
    async with api.client("agent") as other_agent:  # an agent token named "agent"
        body = problem(await other_agent.post("/agents/puller/heartbeat"), 403)
        assert "belongs to agent 'agent'" in body["detail"]


async def test_openapi_documents_the_agent_routes(api: ApiServer) -> None:
    async with api.client(None) as http:
        document = (await http.get("/openapi.json")).json()
    paths = document["paths"]
    assert set(paths["/agents"]) == {"get", "post"}
    assert set(paths["/agents/{name}"]) == {"get", "put", "delete"}
    assert "403" in paths["/agents/{name}/heartbeat"]["post"]["responses"]
    assert "AgentSpec" in document["components"]["schemas"]
