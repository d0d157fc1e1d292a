"""The hub: wires settings, store, engine and services into one object the doors use."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass

from aop_mcp.agents.manager import AgentManager
from aop_mcp.agents.pull import PullQueue
from aop_mcp.agents.work import PullWork
from aop_mcp.config import Settings
from aop_mcp.engine import Clock, Engine, EngineLimits, SystemClock
from aop_mcp.executors import default_agent_adapters, default_executors
from aop_mcp.ports.agent import AgentAdapter
from aop_mcp.ports.events import EventBus, InMemoryEventBus
from aop_mcp.ports.executor import Executor
from aop_mcp.ports.store import Store
from aop_mcp.security.sandbox import SandboxDecision, decide_sandbox
from aop_mcp.security.secrets import SecretService, settings_key
from aop_mcp.security.tokens import TokenService
from aop_mcp.services.dead_letters import DeadLetterService
from aop_mcp.services.overview import OverviewService
from aop_mcp.services.runs import RunService
from aop_mcp.services.workflows import WorkflowService
from aop_mcp.store import open_store


@dataclass(frozen=True, slots=True)
class Hub:
    settings: Settings
    store: Store
    bus: EventBus
    engine: Engine
    workflows: WorkflowService
    runs: RunService
    dead_letters: DeadLetterService
    tokens: TokenService
    secrets: SecretService  # encrypted values for executors; doors never see a value
    agents: AgentManager
    work: PullWork  # agent tasks waiting for a pull agent to claim them
    overview: OverviewService  # the dashboard's aggregates
    sandbox: SandboxDecision  # whether local tasks run in bubblewrap, decided at start


def engine_limits(settings: Settings) -> EngineLimits:
    return EngineLimits(
        max_concurrency=settings.max_concurrency,
        lease_seconds=settings.lease_seconds,
        output_cap=settings.output_cap,
        work_root=settings.work_root,
    )


@asynccontextmanager
async def open_hub(
    settings: Settings,
    *,
    adopt_orphans: bool,
    store: Store | None = None,
    executors: Mapping[str, Executor] | None = None,
    clock: Clock | None = None,
    rng: random.Random | None = None,
    agent_adapters: Mapping[str, AgentAdapter] | None = None,
) -> AsyncIterator[Hub]:
    """Open the store, start the engine, yield the hub; stop and close on exit.

    `adopt_orphans=True` (the server) resumes every run no live engine drives;
    the CLI passes False so `aop run` drives only what it starts. Agents described in
    `settings.agents_dir` are registered (or updated) at start. `agent_adapters` reach
    pushed agents by kind (`mcp`, `fast-agent`); the Agent Manager starts after the engine
    and stops before it.
    """
    store = store or open_store(settings.db)
    clock = clock or SystemClock()
    bus = InMemoryEventBus()
    if agent_adapters is None:
        adapters = default_agent_adapters(settings.fast_agent_config)
    else:
        adapters = dict(agent_adapters)
    agents = AgentManager(store, clock, adapters)
    pull = PullQueue(clock)
    sandbox = decide_sandbox(settings.sandbox, settings.path)
    # Before the executors: dagger tasks reveal the secrets they name through it.
    secrets = SecretService(store, clock, settings_key(settings))
    if executors is None:
        executors = default_executors(
            base_env={"PATH": settings.path},
            sandbox=sandbox.sandboxed,
            picker=agents,
            agent_adapters=adapters,
            pull=pull,
            secrets=secrets,
            dagger_env=settings.dagger_env,
        )
    await store.open()
    engine = Engine(
        store,
        executors,
        bus=bus,
        clock=clock,
        limits=engine_limits(settings),
        adopt_orphans=adopt_orphans,
        rng=rng,
    )
    try:
        await engine.start()
        try:
            await agents.start()
            if settings.agents_dir is not None:
                await agents.load_agent_files(settings.agents_dir)
            try:
                yield Hub(
                    settings=settings,
                    store=store,
                    bus=bus,
                    engine=engine,
                    workflows=WorkflowService(store, clock),
                    runs=RunService(store, engine, clock),
                    dead_letters=DeadLetterService(store, engine),
                    tokens=TokenService(store, clock),
                    secrets=secrets,
                    agents=agents,
                    work=PullWork(agents, pull),
                    overview=OverviewService(store, agents, clock),
                    sandbox=sandbox,
                )
            finally:
                await agents.stop()
        finally:
            await engine.stop()
    finally:
        await store.close()
