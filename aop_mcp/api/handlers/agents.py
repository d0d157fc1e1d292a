"""Handlers of `/agents`: register, list, read, update, deregister, versions, heartbeat."""

from __future__ import annotations

from starlette.responses import Response

from aop_mcp.agents.spec import AgentSpec
from aop_mcp.api import auth, views
from aop_mcp.api.handlers.workflows import location
from aop_mcp.api.operations import Call, reply


async def list_agents(call: Call) -> Response:
    """`GET /agents`: live agents by name, filtered by capability, kind and health."""
    query = call.query
    found = await call.hub.agents.list(
        capability=query.capability, kind=query.kind, health=query.health
    )
    return reply(views.agents(found))


async def register_agent(call: Call) -> Response:
    """`POST /agents`: 201 with the new agent (version 1, or the next for a returning name)."""
    registered = await call.hub.agents.register(call.body)
    status = await call.hub.agents.get(registered.name)
    return reply(
        views.agent(status), 201, {"Location": location(call, f"/agents/{status.agent.name}")}
    )


async def get_agent(call: Call) -> Response:
    """`GET /agents/{name}`: the agent with its health, load and breaker."""
    return reply(views.agent(await call.hub.agents.get(call.param("name"))))


async def update_agent(call: Call) -> Response:
    """`PUT /agents/{name}`: replace its settings; a change makes a new version."""
    name = call.param("name")
    await call.hub.agents.update(name, AgentSpec.named(name, call.body))
    return reply(views.agent(await call.hub.agents.get(name)))


async def deregister_agent(call: Call) -> Response:
    """`DELETE /agents/{name}`: no new task goes to it; its record and history stay."""
    name = call.param("name")
    await call.hub.agents.deregister(name)
    return reply(views.agent(await call.hub.agents.get(name)))


async def agent_versions(call: Call) -> Response:
    """`GET /agents/{name}/versions`: every configuration it had, oldest first."""
    return reply(views.agent_versions(await call.hub.agents.history(call.param("name"))))


async def agent_heartbeat(call: Call) -> Response:
    """`POST /agents/{name}/heartbeat`: a pull agent is alive (its own agent token may call)."""
    name = call.param("name")
    auth.authorize_agent(call.request, call.principal, name)
    return reply(views.agent(await call.hub.agents.heartbeat(name)))
