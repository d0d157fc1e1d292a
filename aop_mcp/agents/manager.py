"""The Agent Manager: registry, versions, discovery, health, selection and circuit breakers.

The registry is durable (the Store's `agents` and `agent_versions`); load, breakers and
probe streaks live in memory (`AgentPool`). The manager keeps every record in memory too,
so selection never waits on the store; every write goes to the store first, then the cache.
It is the engine's `AgentPicker`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Collection, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from aop_mcp.agents.breaker import COOLDOWN_SECONDS, FAILURE_THRESHOLD, BreakerStatus
from aop_mcp.agents.files import read_specs
from aop_mcp.agents.health import Verdict, heartbeat_verdict, probe_verdict, silence_verdict
from aop_mcp.agents.pool import AgentPool
from aop_mcp.agents.selection import matches
from aop_mcp.agents.spec import AgentSpec, amended
from aop_mcp.engine.clock import Clock
from aop_mcp.errors import AgentExists, AgentNotFound, AopError, InvalidAgent, Problem
from aop_mcp.models import Agent, AgentHealth, AgentKind, AgentVersion, Attempt, FailureKind
from aop_mcp.ports.agent import AgentAdapter, AgentFailure, AgentLease
from aop_mcp.ports.store import Store

log = logging.getLogger("aop_mcp.agents")

PROBE_TIMEOUT = 10.0  # seconds a probe may take before it counts as failed


@dataclass(frozen=True, slots=True)
class AgentStatus:
    """An agent's record with its live load and breaker."""

    agent: Agent
    active: int  # tasks running on it now
    breaker: BreakerStatus


class AgentManager:
    """Registers agents, watches their health and picks one for each agent task."""

    def __init__(
        self,
        store: Store,
        clock: Clock,
        adapters: Mapping[str, AgentAdapter] | None = None,
        *,
        probe_interval: float = 15.0,
        failure_threshold: int = FAILURE_THRESHOLD,
        cooldown: float = COOLDOWN_SECONDS,
    ) -> None:
        self._store = store
        self._clock = clock
        self._adapters = dict(adapters or {})
        self._probe_interval = probe_interval
        self._pool = AgentPool(clock, failure_threshold=failure_threshold, cooldown=cooldown)
        self._agents: dict[str, Agent] = {}  # every agent, deregistered ones too
        self._probe_failures: dict[str, int] = {}
        self._loaded = False
        self._writing = asyncio.Lock()  # one registry write at a time: no lost update
        self._loop: asyncio.Task[None] | None = None

    # Lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        """Load the registry and start the health loop. Idempotent."""
        await self._load()
        if self._loop is None:
            self._loop = asyncio.create_task(self._health_loop(), name="aop-agent-health")

    async def stop(self) -> None:
        """Stop the health loop. Idempotent; leases held stay valid until released."""
        loop, self._loop = self._loop, None
        if loop is not None:
            loop.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await loop

    async def _load(self) -> None:
        if not self._loaded:
            agents = await self._store.list_agents(include_deregistered=True)
            self._agents = {agent.name: agent for agent in agents}
            self._loaded = True

    # Registry ----------------------------------------------------------------------

    async def register(self, spec: AgentSpec) -> Agent:
        """Register a new agent (version 1), or a deregistered name again (its next version).

        Raises AgentExists when a live agent has the name.
        """
        await self._load()
        async with self._writing:
            old = self._agents.get(spec.name)
            if old is not None and old.deregistered_at is None:
                raise AgentExists(spec.name)
            now = self._clock.now()
            agent = Agent(
                name=spec.name,
                kind=spec.kind,
                capabilities=tuple(spec.capabilities),
                max_concurrency=spec.max_concurrency,
                weight=spec.weight,
                config=spec.config,
                version=1 if old is None else old.version + 1,
                created_at=now if old is None else old.created_at,
                updated_at=now,
                health_changed_at=now,
            )
            return await self._save(agent, versioned=True)

    async def update(self, name: str, spec: AgentSpec) -> Agent:
        """Change a live agent's configuration: a new version, the old kept in its history.

        A spec equal to the current configuration changes nothing (no new version). The kind
        may not change (InvalidAgent naming `kind`); neither may the name.
        """
        await self._load()
        async with self._writing:
            old = self._live(name)
            _check_update(old, name, spec)
            if spec.same_as(old):
                return old
            agent = replace(
                old,
                capabilities=tuple(spec.capabilities),
                max_concurrency=spec.max_concurrency,
                weight=spec.weight,
                config=spec.config,
                version=old.version + 1,
                updated_at=self._clock.now(),
            )
            return await self._save(agent, versioned=True)

    async def amend(self, name: str, changes: Mapping[str, Any]) -> Agent:
        """Update only the given fields of a live agent (None values keep theirs)."""
        await self._load()
        old = self._live(name)
        problems = _kind_problems(old, changes.get("kind"))
        if problems:  # checked first: the old config would not fit the new kind anyway
            raise InvalidAgent(problems)
        return await self.update(name, amended(old, changes))

    async def deregister(self, name: str) -> Agent:
        """Take an agent out of selection; its record and history stay. Tasks on it finish."""
        await self._load()
        async with self._writing:
            agent = replace(self._live(name), deregistered_at=self._clock.now())
            return await self._save(agent, versioned=False)

    async def heartbeat(self, name: str) -> AgentStatus:
        """Record that a live agent is alive; a silent (degraded, offline) one is healthy again."""
        await self._load()
        async with self._writing:
            now = self._clock.now()
            agent = replace(self._live(name), last_heartbeat_at=now)
            verdict = heartbeat_verdict(agent)
            if verdict is not None:
                agent = replace(agent, **_health_fields(verdict, now))
            await self._save(agent, versioned=False)
        return self._status(agent)

    async def _save(self, agent: Agent, *, versioned: bool) -> Agent:
        """Write the record (and its version) to the store, then the cache; wake waiters."""
        await self._store.save_agent(agent, _version_of(agent) if versioned else None)
        self._agents[agent.name] = agent
        self._pool.changed()
        return agent

    def _live(self, name: str) -> Agent:
        agent = self._agents.get(name)
        if agent is None or agent.deregistered_at is not None:
            raise AgentNotFound(name)
        return agent

    # Discovery ---------------------------------------------------------------------

    async def get(self, name: str) -> AgentStatus:
        """An agent (deregistered ones too) with its load and breaker; AgentNotFound."""
        await self._load()
        agent = self._agents.get(name)
        if agent is None:
            raise AgentNotFound(name)
        return self._status(agent)

    async def list(
        self,
        *,
        capability: str | None = None,
        kind: AgentKind | None = None,
        health: AgentHealth | None = None,
    ) -> list[AgentStatus]:
        """Live agents by name, with the capability, of the kind and in the health given."""
        await self._load()
        kinds = None if kind is None else {kind}
        found = [
            agent
            for name, agent in sorted(self._agents.items())
            if matches(agent, capability=capability, name=None, kinds=kinds)
            and (health is None or agent.health is health)
        ]
        return [self._status(agent) for agent in found]

    async def history(self, name: str) -> list[AgentVersion]:
        """Every configuration the agent had, oldest first; AgentNotFound."""
        await self._load()
        if name not in self._agents:
            raise AgentNotFound(name)
        return await self._store.agent_versions(name)

    async def recent_attempts(self, name: str, *, limit: int = 20) -> list[Attempt]:
        """The latest attempts the agent served, newest first; AgentNotFound."""
        await self._load()
        if name not in self._agents:
            raise AgentNotFound(name)
        return await self._store.list_agent_attempts(name, limit=limit)

    def _status(self, agent: Agent) -> AgentStatus:
        return AgentStatus(
            agent, self._pool.active(agent.name), self._pool.breaker(agent.name).status()
        )

    async def load_agent_files(self, directory: Path | str) -> list[Agent]:
        """Register or update the agents of the `*.yaml` files in `directory`.

        Files are all checked first (InvalidAgent names the file and the field); an agent
        whose file did not change keeps its version.
        """
        await self._load()
        loaded = []
        for spec in read_specs(Path(directory)):
            current = self._agents.get(spec.name)
            if current is None or current.deregistered_at is not None:
                loaded.append(await self.register(spec))
            else:
                loaded.append(await self.update(spec.name, spec))
        return loaded

    # Selection (AgentPicker) ---------------------------------------------------------

    async def acquire(
        self,
        *,
        capability: str | None = None,
        name: str | None = None,
        kinds: Collection[AgentKind] | None = None,
    ) -> AgentLease:
        """Reserve a slot of the best agent by name, or with the capability; wait for one.

        Waits until some agent fits (a release, registration, update, heartbeat, health
        change or breaker cooldown can make one fit): the caller bounds the wait.
        """
        await self._load()
        while True:
            candidates = [
                agent
                for agent in self._agents.values()
                if matches(agent, capability=capability, name=name, kinds=kinds)
            ]
            lease = self._pool.reserve(candidates)
            if lease is not None:
                return lease
            await self._pool.wait(candidates)

    def kinds_of(self, *, capability: str | None, name: str | None) -> frozenset[AgentKind]:
        """The kinds of the live agents by that name, or with that capability."""
        return frozenset(
            agent.kind
            for agent in self._agents.values()
            if matches(agent, capability=capability, name=name, kinds=None)
        )

    def release(self, lease: AgentLease, *, ok: bool) -> None:
        """Free the lease's slot; `ok` feeds the agent's circuit breaker."""
        self._pool.release(lease, ok=ok)

    # Health --------------------------------------------------------------------------

    async def check_health(self) -> None:
        """One round: silent pull agents are marked, pushed agents are probed."""
        await self._load()
        live = [agent for agent in self._agents.values() if agent.deregistered_at is None]
        now = self._clock.now()
        for agent in live:
            if agent.kind is AgentKind.PULL:
                await self._judge(agent.name, silence_verdict(agent, now))
        # Agents of a kind with no adapter are left as they are: nothing here can reach
        # them, and calling them unhealthy would only hide that the adapter is missing.
        probed = [agent for agent in live if agent.kind.value in self._adapters]
        verdicts = await asyncio.gather(*(self._probe(agent) for agent in probed))
        for agent, verdict in zip(probed, verdicts, strict=True):
            await self._judge(agent.name, verdict)

    async def _probe(self, agent: Agent) -> Verdict:
        try:
            async with asyncio.timeout(PROBE_TIMEOUT):
                await self._adapters[agent.kind.value].probe(agent)
        except Exception as exc:  # any failure is the agent's: an adapter may be imperfect
            failures = self._probe_failures.get(agent.name, 0) + 1
            self._probe_failures[agent.name] = failures
            message = str(exc) or type(exc).__name__
            unreachable = isinstance(exc, AgentFailure) and exc.kind is FailureKind.UNAVAILABLE
            return probe_verdict(failures, message, unreachable)
        self._probe_failures.pop(agent.name, None)
        return probe_verdict(0, None)

    async def _judge(self, name: str, verdict: Verdict | None) -> None:
        """Persist a verdict if it changes the agent's health (the reason alone does not)."""
        if verdict is None:
            return
        async with self._writing:
            agent = self._agents.get(name)
            if agent is None or agent.deregistered_at is not None:
                return  # deregistered while it was probed
            if agent.health is verdict.health:
                return
            await self._save(
                replace(agent, **_health_fields(verdict, self._clock.now())), versioned=False
            )
            log.info("agent %r is %s: %s", name, verdict.health, verdict.reason)

    async def _health_loop(self) -> None:
        while True:
            try:
                await self.check_health()
            except AopError as err:  # the store is busy or closing: try again next round
                log.warning("agent health check failed: %s", err)
            await self._clock.sleep_until(self._clock.now() + self._probe_interval)


def _check_update(old: Agent, name: str, spec: AgentSpec) -> None:
    problems = [] if spec.name == name else [Problem("name", "an agent cannot be renamed")]
    problems += _kind_problems(old, spec.kind)
    if problems:
        raise InvalidAgent(problems)


def _kind_problems(old: Agent, kind: AgentKind | str | None) -> list[Problem]:
    if kind is None or kind == old.kind:
        return []
    why = (
        f"cannot change from {old.kind} to {kind}; deregister the agent, then register it "
        "again with the new kind"
    )
    return [Problem("kind", why)]


def _health_fields(verdict: Verdict, now: float) -> dict[str, Any]:
    return {"health": verdict.health, "health_reason": verdict.reason, "health_changed_at": now}


def _version_of(agent: Agent) -> AgentVersion:
    return AgentVersion(
        name=agent.name,
        version=agent.version,
        kind=agent.kind,
        capabilities=agent.capabilities,
        max_concurrency=agent.max_concurrency,
        weight=agent.weight,
        config=agent.config,
        created_at=agent.updated_at,
    )
