"""The AgentAdapter port: hands one task's input to one agent of a kind, and probes it."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any, Protocol

from aop_mcp.models import Agent, AgentKind, FailureKind


@dataclass(frozen=True, slots=True)
class AgentReply:
    """What the agent answered: its text, and structured JSON when it gave some."""

    text: str
    json: Any = None


class AgentFailure(Exception):
    """An agent could not do the task; `kind` is what a task's `retry_on` selects on.

    kinds: TIMEOUT, AGENT_ERROR, UNAVAILABLE, INVALID_OUTPUT (see FailureKind).
    """

    def __init__(self, kind: FailureKind, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


class AgentAdapter(Protocol):
    """Talks to the agents of one kind (`fast-agent`, `mcp`). Driver errors stop here."""

    kind: str

    async def invoke(self, agent: Agent, message: str) -> AgentReply:
        """Send `message` to `agent` and return its reply; raises AgentFailure.

        The caller bounds it with its own deadline: it must stop cleanly when cancelled.
        """
        ...

    async def probe(self, agent: Agent) -> None:
        """Check the agent answers (an MCP ping or tool listing); raises AgentFailure."""
        ...


@dataclass(frozen=True, slots=True)
class AgentLease:
    """One slot of an agent's capacity, held while a task runs on it."""

    agent: Agent
    id: str


class AgentPicker(Protocol):
    """Chooses the agent for a task and keeps count of its load (the Agent Manager)."""

    async def acquire(
        self,
        *,
        capability: str | None,
        name: str | None,
        kinds: Collection[AgentKind] | None = None,
    ) -> AgentLease:
        """Wait until a healthy agent (by name, or with the capability, and of one of the
        `kinds` when given) has a free slot.

        The caller bounds the wait with its own deadline (then the task is `unavailable`).
        """
        ...

    def kinds_of(self, *, capability: str | None, name: str | None) -> frozenset[AgentKind]:
        """The kinds of the registered agents a task for this capability or name could use."""
        ...

    def release(self, lease: AgentLease, *, ok: bool) -> None:
        """Give the slot back; `ok` feeds the agent's circuit breaker."""
        ...
