"""How healthy an agent is: pure verdicts from heartbeats and probe results.

Pull agents report heartbeats: silent for 2 intervals makes them degraded, for 4 offline.
Pushed agents (mcp, fast-agent) are probed: one failure makes them degraded, 3 in a row
unhealthy (offline when they could not be reached at all), a success healthy again. The
manager persists a verdict only when it changes the agent's health.
"""

from __future__ import annotations

from dataclasses import dataclass

from aop_mcp.models import Agent, AgentHealth, AgentKind

DEGRADED_AFTER = 2  # heartbeat intervals without a heartbeat
OFFLINE_AFTER = 4
UNHEALTHY_AFTER = 3  # failed probes in a row
DEFAULT_HEARTBEAT_INTERVAL = 30.0


@dataclass(frozen=True, slots=True)
class Verdict:
    health: AgentHealth
    reason: str


def heartbeat_interval(agent: Agent) -> float:
    return float(agent.config.get("heartbeat_interval", DEFAULT_HEARTBEAT_INTERVAL))


def silence_verdict(agent: Agent, now: float) -> Verdict | None:
    """What the silence of a pull agent says about it; None when it says nothing new.

    Silence is counted from the last heartbeat, or from the last registration or update
    for an agent that has not sent one since.
    """
    interval = heartbeat_interval(agent)
    since = agent.last_heartbeat_at if agent.last_heartbeat_at is not None else agent.updated_at
    silent = now - since
    if silent >= OFFLINE_AFTER * interval:
        return Verdict(AgentHealth.OFFLINE, f"no heartbeat for {silent:.0f} s")
    if silent >= DEGRADED_AFTER * interval:
        return Verdict(AgentHealth.DEGRADED, f"no heartbeat for {silent:.0f} s")
    return None


def heartbeat_verdict(agent: Agent) -> Verdict | None:
    """A heartbeat brings a silent (degraded or offline) pull agent back.

    Pushed agents are judged by probes alone: a heartbeat is only noted.
    """
    if agent.kind is AgentKind.PULL and agent.health in (AgentHealth.DEGRADED, AgentHealth.OFFLINE):
        return Verdict(AgentHealth.HEALTHY, "heartbeat received")
    return None


def probe_verdict(failures: int, error: str | None, unreachable: bool = False) -> Verdict:
    """The verdict after a probe; `failures` counts failed probes in a row, this one too.

    An agent that cannot even be reached (`unreachable`) that many times is offline; one
    that answers but fails is unhealthy.
    """
    if error is None:
        return Verdict(AgentHealth.HEALTHY, "probe answered")
    if failures >= UNHEALTHY_AFTER:
        health = AgentHealth.OFFLINE if unreachable else AgentHealth.UNHEALTHY
        return Verdict(health, f"{failures} probes in a row failed: {error}")
    return Verdict(AgentHealth.DEGRADED, f"probe failed: {error}")
