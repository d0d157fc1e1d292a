"""Agent tools: register, change and retire agents, find them, and report heartbeats."""

from __future__ import annotations

from typing import Annotated, Any

from mcp.server.mcpserver import MCPServer
from mcp_types import ToolAnnotations
from pydantic import Field

from aop_mcp.agents.spec import parse_spec
from aop_mcp.mcp.agent_views import AgentVersionView, AgentView, agent_version_view, agent_view
from aop_mcp.mcp.auth import require_agent, require_writer
from aop_mcp.mcp.errors import tool_errors
from aop_mcp.mcp.holder import HubHolder
from aop_mcp.mcp.views import View
from aop_mcp.models import AgentHealth, AgentKind

READ_ONLY = ToolAnnotations(read_only_hint=True, open_world_hint=False)
WRITES = ToolAnnotations(open_world_hint=False)

AgentName = Annotated[str, Field(description="the agent's name, as agent_list shows it")]
Capabilities = Annotated[
    list[str],
    Field(description="what it can do, e.g. ['summarize']; tasks ask for one capability"),
]
Config = Annotated[
    dict[str, Any],
    Field(
        description="by kind. fast-agent: {instruction, model='passthrough', servers=[], card}; "
        "mcp: {url | command (exactly one), env={}, headers={}, tool, input_argument='input'}; "
        "pull: {heartbeat_interval=30 (seconds)}"
    ),
]
MaxConcurrency = Annotated[int, Field(description="tasks it may run at once", ge=1)]
Weight = Annotated[int, Field(description="its share among equally busy agents", ge=1)]


class AgentListView(View):
    agents: list[AgentView] = Field(description="by name")


class AgentDetailView(AgentView):
    history: list[AgentVersionView] | None = Field(
        default=None, description="every configuration it had, oldest first (when asked)"
    )


def register(server: MCPServer, hubs: HubHolder) -> None:
    """Add the agent tools to `server`."""
    _register_writes(server, hubs)
    _register_reads(server, hubs)


def _register_writes(server: MCPServer, hubs: HubHolder) -> None:
    @server.tool(annotations=WRITES)
    @tool_errors
    async def agent_register(
        name: Annotated[str, Field(description="unique: letters, digits, _ . -; up to 64")],
        kind: Annotated[AgentKind, Field(description="fast-agent, mcp or pull")],
        capabilities: Capabilities,
        config: Config | None = None,
        max_concurrency: MaxConcurrency = 1,
        weight: Weight = 1,
    ) -> AgentView:
        """Register an agent that `agent` tasks can be given to, as version 1 of its config.

        kind `mcp`: a remote MCP server whose `tool` does the work (give `url` or `command`);
        `fast-agent`: an agent run in the hub (give `instruction`); `pull`: an agent that
        claims work itself and must call agent_heartbeat. A live agent with the name is an
        error (use agent_update). Errors name each invalid field, e.g. `config.tool`.
        """
        require_writer("register an agent")
        hub = await hubs.wait_hub()
        spec = parse_spec(
            {
                "name": name,
                "kind": kind,
                "capabilities": capabilities,
                "config": config or {},
                "max_concurrency": max_concurrency,
                "weight": weight,
            }
        )
        return agent_view(await hub.agents.get((await hub.agents.register(spec)).name))

    @server.tool(annotations=WRITES)
    @tool_errors
    async def agent_update(
        name: AgentName,
        capabilities: Capabilities | None = None,
        config: Config | None = None,
        max_concurrency: MaxConcurrency | None = None,
        weight: Weight | None = None,
        kind: Annotated[AgentKind | None, Field(description="cannot change; omit it")] = None,
    ) -> AgentView:
        """Change an agent: only the fields given change, and `config` replaces the whole config.

        Each change makes a new version (agent_get with include_history shows the old ones);
        sending the current values changes nothing. The kind cannot change: deregister the
        agent and register it again instead.
        """
        require_writer("update an agent")
        hub = await hubs.wait_hub()
        changes = {
            "kind": kind,
            "capabilities": capabilities,
            "config": config,
            "max_concurrency": max_concurrency,
            "weight": weight,
        }
        updated = await hub.agents.amend(name, changes)
        return agent_view(await hub.agents.get(updated.name))

    @server.tool(annotations=ToolAnnotations(destructive_hint=True, open_world_hint=False))
    @tool_errors
    async def agent_deregister(name: AgentName) -> AgentView:
        """Retire an agent: no new task goes to it; tasks running on it finish.

        Its record and history stay (agent_get shows them); agent_register with the same name
        brings it back as its next version.
        """
        require_writer("deregister an agent")
        hub = await hubs.wait_hub()
        await hub.agents.deregister(name)
        return agent_view(await hub.agents.get(name))

    @server.tool(annotations=WRITES)
    @tool_errors
    async def agent_heartbeat(name: AgentName) -> AgentView:
        """Report that a pull agent is alive; call it at least every heartbeat_interval seconds.

        A pull agent silent for 2 intervals is degraded (used only when nothing healthy is
        free), for 4 offline (not used); a heartbeat makes it healthy again. Tokens with the
        agent role may call this.
        """
        require_agent(name, "report a heartbeat")
        hub = await hubs.wait_hub()
        return agent_view(await hub.agents.heartbeat(name))


def _register_reads(server: MCPServer, hubs: HubHolder) -> None:
    @server.tool(annotations=READ_ONLY)
    @tool_errors
    async def agent_list(
        capability: Annotated[str | None, Field(description="only agents that can do this")] = None,
        kind: Annotated[AgentKind | None, Field(description="only agents of this kind")] = None,
        health: Annotated[
            AgentHealth | None, Field(description="only agents in this health")
        ] = None,
    ) -> AgentListView:
        """List registered agents with their health, load (active tasks) and circuit breaker.

        Filter by a capability to see who can take a task that asks for it. An agent is
        picked only while healthy (degraded when nothing healthy is free), with active below
        max_concurrency and its breaker not open.
        """
        hub = await hubs.wait_hub()
        found = await hub.agents.list(capability=capability, kind=kind, health=health)
        return AgentListView(agents=[agent_view(status) for status in found])

    @server.tool(annotations=READ_ONLY)
    @tool_errors
    async def agent_get(
        name: AgentName,
        include_history: Annotated[
            bool, Field(description="also list every configuration version it had")
        ] = False,
    ) -> AgentDetailView:
        """One agent: config, health and why, active tasks, circuit breaker, and its history.

        A breaker opens after 3 failed tasks in a row and refuses work for 30 s, then lets one
        trial task through. Deregistered agents are shown too (deregistered_at is set).
        """
        hub = await hubs.wait_hub()
        view = agent_view(await hub.agents.get(name))
        history = None
        if include_history:
            history = [agent_version_view(v) for v in await hub.agents.history(name)]
        return AgentDetailView(**view.model_dump(), history=history)
