"""The live load of the agents: leases held, circuit breakers, round-robin scores, waiters.

All in memory: after a restart no task holds a slot and every breaker starts closed. Waiters
sleep on an event that is replaced each time something changes (a release, a registration,
a health change), so a wake-up is never lost between checking and waiting.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

from aop_mcp.agents.breaker import COOLDOWN_SECONDS, FAILURE_THRESHOLD, CircuitBreaker
from aop_mcp.agents.selection import Slot, choose
from aop_mcp.engine.clock import Clock
from aop_mcp.models import Agent, new_id
from aop_mcp.ports.agent import AgentLease


@dataclass(frozen=True, slots=True)
class _Held:
    name: str
    trial: bool  # the half-open trial of the agent's breaker


class AgentPool:
    """Slots, breakers and the selection state of every agent of a manager."""

    def __init__(
        self,
        clock: Clock,
        *,
        failure_threshold: int = FAILURE_THRESHOLD,
        cooldown: float = COOLDOWN_SECONDS,
    ) -> None:
        self._clock = clock
        self._threshold = failure_threshold
        self._cooldown = cooldown
        self._active: dict[str, int] = {}
        self._breakers: dict[str, CircuitBreaker] = {}
        self._scores: dict[str, int] = {}
        self._held: dict[str, _Held] = {}
        self._changed = asyncio.Event()

    def active(self, name: str) -> int:
        """Tasks running on the agent now."""
        return self._active.get(name, 0)

    def breaker(self, name: str) -> CircuitBreaker:
        """The agent's breaker (a closed one the first time)."""
        breaker = self._breakers.get(name)
        if breaker is None:
            breaker = self._breakers[name] = CircuitBreaker(
                self._clock, failure_threshold=self._threshold, cooldown=self._cooldown
            )
        return breaker

    def reserve(self, candidates: Sequence[Agent]) -> AgentLease | None:
        """Take a slot of the best candidate now, or None if none may take a task."""
        ordered = sorted(candidates, key=lambda agent: agent.name)
        pick = choose([self._slot(agent) for agent in ordered], self._scores)
        if pick is None:
            return None
        self._scores = pick.scores
        agent = next(agent for agent in ordered if agent.name == pick.name)
        lease = AgentLease(agent=agent, id=new_id("lease"))
        self._held[lease.id] = _Held(agent.name, self.breaker(agent.name).admit())
        self._active[agent.name] = self.active(agent.name) + 1
        return lease

    def _slot(self, agent: Agent) -> Slot:
        return Slot(
            name=agent.name,
            health=agent.health,
            active=self.active(agent.name),
            max_concurrency=agent.max_concurrency,
            weight=agent.weight,
            allowed=self.breaker(agent.name).allows(),
        )

    def release(self, lease: AgentLease, *, ok: bool) -> None:
        """Give a slot back and feed the breaker; a lease released twice counts once."""
        held = self._held.pop(lease.id, None)
        if held is None:
            return
        self._active[held.name] = max(self.active(held.name) - 1, 0)
        self.breaker(held.name).record(ok, trial=held.trial)
        self.changed()

    def changed(self) -> None:
        """Wake every waiter: something that decides selection has changed."""
        self._changed.set()
        self._changed = asyncio.Event()

    async def wait(self, candidates: Sequence[Agent]) -> None:
        """Sleep until something changes, or until a candidate's breaker cooldown ends."""
        changed = self._changed.wait()
        wake_at = self._next_trial_at(candidates)
        if wake_at is None:
            await changed
            return
        waiters = [
            asyncio.ensure_future(changed),
            asyncio.ensure_future(self._clock.sleep_until(wake_at)),
        ]
        try:
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()
            await asyncio.gather(*waiters, return_exceptions=True)

    def _next_trial_at(self, candidates: Sequence[Agent]) -> float | None:
        times = [
            status.open_until
            for status in (self.breaker(agent.name).status() for agent in candidates)
            if status.open_until is not None and status.open_until > self._clock.now()
        ]
        return min(times, default=None)
