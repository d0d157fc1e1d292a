"""What the agent tools return: agents with their health, load and breaker, and versions.

Config values that may be credentials (`env`, `headers`) are shown as `***`.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from aop_mcp.agents.manager import AgentStatus
from aop_mcp.agents.spec import public_config
from aop_mcp.mcp.views import View, iso
from aop_mcp.models import AgentVersion


class BreakerView(View):
    state: str = Field(description="closed (work flows), open (refused), half_open (one trial)")
    failures: int = Field(description="failed tasks in a row")
    open_until: str | None = Field(default=None, description="when an open breaker half-opens")


class AgentView(View):
    name: str
    kind: str = Field(description="fast-agent, mcp or pull")
    capabilities: list[str]
    max_concurrency: int
    weight: int
    config: dict[str, Any]
    version: int
    health: str = Field(description="healthy, degraded, unhealthy or offline")
    health_reason: str
    health_changed_at: str | None
    last_heartbeat_at: str | None = None
    active: int = Field(description="tasks running on it now")
    breaker: BreakerView
    created_at: str | None
    updated_at: str | None
    deregistered_at: str | None = None


class AgentVersionView(View):
    version: int
    kind: str
    capabilities: list[str]
    max_concurrency: int
    weight: int
    config: dict[str, Any]
    created_at: str | None


def agent_view(status: AgentStatus) -> AgentView:
    agent, breaker = status.agent, status.breaker
    return AgentView(
        name=agent.name,
        kind=str(agent.kind),
        capabilities=list(agent.capabilities),
        max_concurrency=agent.max_concurrency,
        weight=agent.weight,
        config=public_config(agent.config),
        version=agent.version,
        health=str(agent.health),
        health_reason=agent.health_reason,
        health_changed_at=iso(agent.health_changed_at),
        last_heartbeat_at=iso(agent.last_heartbeat_at),
        active=status.active,
        breaker=BreakerView(
            state=str(breaker.state), failures=breaker.failures, open_until=iso(breaker.open_until)
        ),
        created_at=iso(agent.created_at),
        updated_at=iso(agent.updated_at),
        deregistered_at=iso(agent.deregistered_at),
    )


def agent_version_view(version: AgentVersion) -> AgentVersionView:
    return AgentVersionView(
        version=version.version,
        kind=str(version.kind),
        capabilities=list(version.capabilities),
        max_concurrency=version.max_concurrency,
        weight=version.weight,
        config=public_config(version.config),
        created_at=iso(version.created_at),
    )
