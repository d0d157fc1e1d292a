"""The MCP server of aop-mcp: tools, resources and the prompt, wired to one hub holder."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING

from mcp.server.auth.settings import AuthSettings
from mcp.server.mcpserver import MCPServer
from mcp.server.subscriptions import InMemorySubscriptionBus

from aop_mcp.mcp import (
    prompts,
    resources,
    tools_agents,
    tools_dlq,
    tools_runs,
    tools_secrets,
    tools_tasks,
    tools_work,
    tools_workflows,
)
from aop_mcp.mcp.auth import HubTokenVerifier
from aop_mcp.mcp.holder import HubHolder
from aop_mcp.mcp.subscriptions import RunUpdates

if TYPE_CHECKING:  # not imported at run time: `aop stdio` answers before the hub loads
    from aop_mcp.hub import Hub

INSTRUCTIONS = """\
aop-mcp runs workflows: named DAGs of tasks (shell commands or Python callables) with
retries, timeouts, fallbacks and a dead-letter queue. Runs are durable and go on in the
background.

Typical use:
1. Write a document (the design_workflow prompt explains the format), check it with
   workflow_validate, store it with workflow_define.
2. run_start it (returns a run id at once), then run_wait (blocks with progress, up to
   300 s; call again if not finished) or run_status for a snapshot.
3. When a task failed: task_get / task_logs show why. Fix the cause, then run_retry the
   run, or dlq_replay its dead letter (dlq_list).
Other tools: workflow_list, workflow_get, run_list (paged with cursor), run_cancel,
task_list. Agents (for `agent` tasks): agent_register, agent_list (by capability),
agent_get, agent_update, agent_deregister; pull agents call agent_heartbeat.
Secrets (admin tokens only; values are never returned): secret_set, secret_list,
secret_delete.
Resources: aop://workflows/{name}, aop://runs/{run_id} and aop://runs/{run_id}/graph
(Mermaid); subscribe to a run to hear when it changes.
Errors come back as tool errors whose text says how to fix the call.
"""


def _package_version() -> str:
    try:
        return version("aop-mcp")
    except PackageNotFoundError:
        return "unknown"


@dataclass(frozen=True, slots=True)
class McpDoor:
    """The MCP server with the holder its tools read the hub from and its update pump."""

    server: MCPServer
    hubs: HubHolder
    updates: RunUpdates

    def get_hub(self) -> Hub:
        """The open hub (for other doors mounted beside MCP); raises EngineStopped."""
        return self.hubs.get_hub()

    @asynccontextmanager
    async def attached(self, hub: Hub) -> AsyncIterator[None]:
        """Serve `hub` to the tools, and announce its run changes to subscribers, while inside."""
        self.hubs.set(hub)
        pump = asyncio.create_task(self.updates.pump(hub), name="aop-mcp resource updates")
        try:
            yield
        finally:
            self.hubs.clear()
            pump.cancel()
            await asyncio.gather(pump, return_exceptions=True)


def create_mcp(*, auth: AuthSettings | None = None) -> McpDoor:
    """A new MCP server with its own hub holder; with `auth`, it needs the hub's bearer tokens."""
    hubs = HubHolder()
    bus = InMemorySubscriptionBus()
    server = MCPServer(
        "aop-mcp",
        title="aop-mcp workflow engine",
        instructions=INSTRUCTIONS,
        version=_package_version(),
        token_verifier=HubTokenVerifier(hubs) if auth is not None else None,
        auth=auth,
        subscriptions=bus,
        log_level="WARNING",
    )
    for area in (
        tools_workflows,
        tools_runs,
        tools_tasks,
        tools_dlq,
        tools_agents,
        tools_work,
        tools_secrets,
        resources,
    ):
        area.register(server, hubs)
    prompts.register(server)
    updates = RunUpdates(bus)
    updates.install(server)
    return McpDoor(server=server, hubs=hubs, updates=updates)
