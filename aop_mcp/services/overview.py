"""The overview a person sees first: runs by status, throughput, agents, dead letters.

Every number is an aggregate the store computes in SQL from an index: nothing is loaded
into Python, and at 10,000 runs the whole overview takes a few milliseconds
(`tools/bench_dashboard.py`).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from aop_mcp.agents.manager import AgentManager
from aop_mcp.engine.clock import Clock
from aop_mcp.models import AgentHealth, Run, RunStatus
from aop_mcp.ports.store import Store

#: The throughput chart: the last ten minutes in twenty-second bars.
WINDOW_SECONDS = 600.0
BUCKET_SECONDS = 20.0
RECENT_RUNS = 8


@dataclass(frozen=True, slots=True)
class Overview:
    runs_by_status: list[tuple[RunStatus, int]]  # every status, in lifecycle order
    throughput: list[int]  # tasks finished per bucket, oldest first
    since: float  # start of the first bucket
    until: float  # end of the last bucket (now)
    bucket_seconds: float
    agents_by_health: list[tuple[AgentHealth, int]]  # only healths some agent has
    agents_total: int
    dead_letters: int  # waiting for a replay
    recent_runs: list[Run]

    @property
    def window_minutes(self) -> int:
        """The chart's window, in whole minutes."""
        return round((self.until - self.since) / 60)


class OverviewService:
    def __init__(self, store: Store, agents: AgentManager, clock: Clock) -> None:
        self._store = store
        self._agents = agents
        self._clock = clock

    async def get(self) -> Overview:
        """The overview as of now."""
        until = self._clock.now()
        since = until - WINDOW_SECONDS
        counts, throughput, dead, recent, agents = await asyncio.gather(
            self._store.count_runs(),
            self._store.task_throughput(since=since, until=until, bucket_seconds=BUCKET_SECONDS),
            self._store.count_dead_letters(),
            self._store.list_runs(limit=RECENT_RUNS),
            self._agents.list(),
        )
        health: dict[AgentHealth, int] = {}
        for status in agents:
            health[status.agent.health] = health.get(status.agent.health, 0) + 1
        return Overview(
            runs_by_status=[(status, counts.get(status, 0)) for status in RunStatus],
            throughput=throughput,
            since=since,
            until=until,
            bucket_seconds=BUCKET_SECONDS,
            agents_by_health=[(h, health[h]) for h in AgentHealth if h in health],
            agents_total=len(agents),
            dead_letters=dead,
            recent_runs=recent,
        )
