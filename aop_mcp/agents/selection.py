"""Which agent gets the next task: pure functions over snapshots, so every rule is testable.

1. Candidates: live agents with the capability (or the one named), of an allowed kind.
2. Of those, the ones that may take a task now: room under max_concurrency, breaker allows,
   healthy; degraded agents only when no healthy candidate has room.
3. The least busy by active / max_concurrency.
4. Among equally busy ones, smooth weighted round-robin by weight (nginx's algorithm: each
   pick adds every weight to its agent's current score, the highest score wins and gives
   back the sum of weights), so weights 1:2:1 give a, b, c, b, a, b, c, b, ...
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction

from aop_mcp.models import Agent, AgentHealth, AgentKind


@dataclass(frozen=True, slots=True)
class Slot:
    """One candidate agent as selection sees it at this instant."""

    name: str
    health: AgentHealth
    active: int
    max_concurrency: int
    weight: int
    allowed: bool  # its circuit breaker lets a task through

    @property
    def has_room(self) -> bool:
        return self.allowed and self.active < self.max_concurrency

    @property
    def load(self) -> Fraction:
        return Fraction(self.active, self.max_concurrency)


@dataclass(frozen=True, slots=True)
class Pick:
    """The chosen agent and the round-robin scores to keep for the next pick."""

    name: str
    scores: dict[str, int]


def matches(
    agent: Agent,
    *,
    capability: str | None,
    name: str | None,
    kinds: Collection[AgentKind] | None,
) -> bool:
    """Whether `agent` is a candidate for a task asking for this capability, name and kinds."""
    if agent.deregistered_at is not None:
        return False
    if kinds is not None and agent.kind not in kinds:
        return False
    if name is not None and agent.name != name:
        return False
    return capability is None or capability in agent.capabilities


def usable(slots: Sequence[Slot]) -> list[Slot]:
    """The slots that may take a task now: healthy ones, else degraded ones, with room."""
    open_slots = [slot for slot in slots if slot.has_room]
    healthy = [slot for slot in open_slots if slot.health is AgentHealth.HEALTHY]
    if healthy:
        return healthy
    return [slot for slot in open_slots if slot.health is AgentHealth.DEGRADED]


def least_busy(slots: Sequence[Slot]) -> list[Slot]:
    """The slots with the lowest active / max_concurrency (exact fractions: no float ties)."""
    if not slots:
        return []
    lowest = min(slot.load for slot in slots)
    return [slot for slot in slots if slot.load == lowest]


def round_robin(slots: Sequence[Slot], scores: Mapping[str, int]) -> Pick:
    """Smooth weighted round-robin among `slots` (not empty); ties go to the first slot."""
    current = {slot.name: scores.get(slot.name, 0) + slot.weight for slot in slots}
    chosen = max(slots, key=lambda slot: current[slot.name]).name
    current[chosen] -= sum(slot.weight for slot in slots)
    return Pick(chosen, dict(scores) | current)


def choose(slots: Sequence[Slot], scores: Mapping[str, int]) -> Pick | None:
    """The agent for the next task, or None when no candidate may take one now.

    `slots` should come in a stable order (by name) so that equal scores pick alike.
    """
    tied = least_busy(usable(slots))
    return round_robin(tied, scores) if tied else None
