"""Pull-work tools: an agent connected over MCP claims tasks, keeps them, and hands them in."""

from __future__ import annotations

from typing import Annotated, Any

from mcp.server.mcpserver import MCPServer
from mcp_types import ToolAnnotations
from pydantic import Field

from aop_mcp.agents.pull import Claim
from aop_mcp.mcp.auth import require_agent
from aop_mcp.mcp.errors import tool_errors
from aop_mcp.mcp.holder import HubHolder
from aop_mcp.mcp.views import View, iso

WORK = ToolAnnotations(open_world_hint=False)
AgentName = Annotated[str, Field(description="your name, as registered with kind 'pull'")]
ClaimId = Annotated[str, Field(description="the claim_id task_claim returned")]
LeaseSeconds = Annotated[
    float, Field(description="how long the task stays yours without a heartbeat", ge=1, le=3600)
]


class ClaimView(View):
    claim_id: str
    run_id: str
    task_id: str
    attempt: int
    input: str = Field(description="the task's input: do what it asks")
    capability: str | None
    lease_until: str | None = Field(description="call task_heartbeat before this time")


class ClaimResult(View):
    claim: ClaimView | None = Field(description="null: no task for you now; ask again later")


class Done(View):
    ok: bool = True


def claim_view(claim: Claim) -> ClaimView:
    return ClaimView(
        claim_id=claim.id,
        run_id=claim.run_id,
        task_id=claim.task_id,
        attempt=claim.attempt,
        input=claim.input,
        capability=claim.capability,
        lease_until=iso(claim.lease_until),
    )


def register(server: MCPServer, hubs: HubHolder) -> None:
    """Add the pull-work tools to `server`."""

    @server.tool(annotations=WORK)
    @tool_errors
    async def task_claim(
        agent: AgentName,
        capabilities: Annotated[
            list[str] | None,
            Field(description="what you will take now; omit for all you registered with"),
        ] = None,
        lease_seconds: LeaseSeconds = 60,
        wait_seconds: Annotated[
            float,
            Field(description="wait this long for a task before null (long poll)", ge=0, le=60),
        ] = 0,
    ) -> ClaimResult:
        """Take the oldest waiting agent task you can do; it is yours until the lease ends.

        For agents registered with kind 'pull'. Returns claim: null when nothing waits, even
        after `wait_seconds` (then call again). Do the work its `input` describes, call
        task_heartbeat before `lease_until` if it takes longer, then task_complete with the
        result (or task_fail). If the lease runs out the task goes back to the engine and
        your late result is refused.
        """
        require_agent(agent, "claim work")
        hub = await hubs.wait_hub()
        claim = await hub.work.claim(agent, capabilities, lease_seconds, wait_seconds)
        return ClaimResult(claim=None if claim is None else claim_view(claim))

    @server.tool(annotations=WORK)
    @tool_errors
    async def task_heartbeat(
        agent: AgentName, claim_id: ClaimId, lease_seconds: LeaseSeconds = 60
    ) -> ClaimView:
        """Keep a claimed task: its lease now ends `lease_seconds` from now."""
        require_agent(agent, "keep claimed work")
        hub = await hubs.wait_hub()
        return claim_view(await hub.work.heartbeat(agent, claim_id, lease_seconds))

    @server.tool(annotations=WORK)
    @tool_errors
    async def task_complete(
        agent: AgentName,
        claim_id: ClaimId,
        result: Annotated[str, Field(description="your answer: the task's output text")],
        json: Annotated[
            Any, Field(description="the answer as structured JSON, when you have one")
        ] = None,
    ) -> Done:
        """Hand in the result of a claimed task: it succeeds and its run goes on.

        Refused with an error if your lease expired first (the task was given back).
        """
        require_agent(agent, "complete work")
        hub = await hubs.wait_hub()
        await hub.work.complete(agent, claim_id, result, json)
        return Done()

    @server.tool(annotations=WORK)
    @tool_errors
    async def task_fail(
        agent: AgentName,
        claim_id: ClaimId,
        error: Annotated[str, Field(description="what went wrong, for the people reading")],
        retryable: Annotated[
            bool, Field(description="false when trying again cannot help: no retry then")
        ] = True,
    ) -> Done:
        """Report that you could not do a claimed task; its retry policy decides what next."""
        require_agent(agent, "fail work")
        hub = await hubs.wait_hub()
        await hub.work.fail(agent, claim_id, error, retryable)
        return Done()
