"""The service pull agents call: claim work, keep the lease, hand in the result."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from aop_mcp.agents.manager import AgentManager
from aop_mcp.agents.pull import Claim, PullQueue
from aop_mcp.errors import Conflict
from aop_mcp.models import Agent, AgentKind

#: Longest lease a claim may ask for: a crashed agent holds its task at most this long.
MAX_LEASE_SECONDS = 3600.0
#: Longest long poll of a claim: an idle agent asks again at least this often.
MAX_WAIT_SECONDS = 60.0


class NotAPullAgent(Conflict):
    def __init__(self, name: str, kind: str) -> None:
        super().__init__(
            f"agent {name!r} is of kind {kind!r}: only agents registered with kind 'pull' "
            "claim work; register one (agent_register with kind 'pull')"
        )
        self.name = name


class PullWork:
    """Each call also counts as the agent's heartbeat."""

    def __init__(self, agents: AgentManager, queue: PullQueue) -> None:
        self._agents = agents
        self.queue = queue

    async def claim(
        self,
        agent: str,
        capabilities: Sequence[str] | None,
        lease_seconds: float,
        wait_seconds: float = 0.0,
    ) -> Claim | None:
        """The oldest task this pull agent may do, leased to it; None when there is none.

        `capabilities` narrows what it asks for (default: all it was registered with);
        `wait_seconds` waits that long for a task to arrive (a long poll) before None.
        """
        registered = await self._pull_agent(agent)
        wanted = registered.capabilities if capabilities is None else capabilities
        wait = min(max(wait_seconds, 0.0), MAX_WAIT_SECONDS)
        return await self.queue.claim_within(agent, wanted, _lease(lease_seconds), wait)

    async def heartbeat(self, agent: str, claim_id: str, lease_seconds: float) -> Claim:
        """Extend the lease on a claimed task; raises ClaimNotFound or LeaseExpired."""
        await self._pull_agent(agent)
        return self.queue.heartbeat(agent, claim_id, _lease(lease_seconds))

    async def complete(self, agent: str, claim_id: str, text: str, json: Any = None) -> None:
        """Hand in the result of a claimed task; refused once its lease has expired."""
        await self._pull_agent(agent)
        self.queue.complete(agent, claim_id, text, json)

    async def fail(self, agent: str, claim_id: str, message: str, retryable: bool) -> None:
        """Report that a claimed task failed; `retryable=False` fails it for good."""
        await self._pull_agent(agent)
        self.queue.fail(agent, claim_id, message, retryable)

    async def _pull_agent(self, name: str) -> Agent:
        status = await self._agents.heartbeat(name)  # AgentNotFound for an unknown name
        if status.agent.kind is not AgentKind.PULL:
            raise NotAPullAgent(name, str(status.agent.kind))
        return status.agent


def _lease(seconds: float) -> float:
    return min(max(seconds, 1.0), MAX_LEASE_SECONDS)
