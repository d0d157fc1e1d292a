"""Agent pages: every agent with its health, load and breaker; one agent's tasks and configs."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from aop_mcp.web.auth import WebContext
from aop_mcp.web.render import render

RECENT_TASKS = 25


async def agent_list(request: Request, ctx: WebContext) -> Response:
    """Live agents by name: health, load, circuit state, capabilities."""
    agents = await ctx.hub.agents.list()
    return render("agents.html", ctx.page(nav="agents", agents=agents))


async def agent_page(request: Request, ctx: WebContext) -> Response:
    """One agent: its state, the tasks it served lately, and every config it had."""
    name = request.path_params["name"]
    status = await ctx.hub.agents.get(name)
    versions = await ctx.hub.agents.history(name)
    attempts = await ctx.hub.agents.recent_attempts(name, limit=RECENT_TASKS)
    return render(
        "agent.html",
        ctx.page(nav="agents", status=status, versions=list(reversed(versions)), attempts=attempts),
    )
