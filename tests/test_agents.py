"""The Agent Manager: registry and versions, discovery, health, selection, circuit breaker.

A real SQLite file holds the registry; a ManualClock moves time; no test sleeps.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from aop_mcp.agents.breaker import BreakerState
from aop_mcp.agents.manager import AgentManager
from aop_mcp.agents.selection import Slot, choose
from aop_mcp.agents.spec import AgentSpec, parse_spec
from aop_mcp.engine.clock import ManualClock
from aop_mcp.errors import AgentExists, AgentNotFound, InvalidAgent
from aop_mcp.models import Agent, AgentHealth, AgentKind, FailureKind
from aop_mcp.ports.agent import AgentFailure, AgentReply
from aop_mcp.store import SqliteStore

pytestmark = pytest.mark.anyio

WAIT = 20


def mcp_spec(name: str, *caps: str, **fields: Any) -> AgentSpec:
    config = fields.pop("config", {"url": f"http://127.0.0.1:9/{name}", "tool": "work"})
    raw = {"name": name, "kind": "mcp", "capabilities": list(caps or ("summarize",))}
    return parse_spec(raw | {"config": config} | fields)


def pull_spec(name: str, interval: float = 10.0) -> AgentSpec:
    raw = {"name": name, "kind": "pull", "capabilities": ["summarize"]}
    return parse_spec(raw | {"config": {"heartbeat_interval": interval}})


class FlakyAdapter:
    """An `mcp` adapter whose probe fails while `failing` is set."""

    kind = "mcp"

    def __init__(self) -> None:
        self.failing = False
        self.failure = AgentFailure(FailureKind.AGENT_ERROR, "tool 'summarize' is not listed")
        self.probed: list[str] = []

    async def invoke(self, agent: Agent, message: str) -> AgentReply:
        return AgentReply(message)

    async def probe(self, agent: Agent) -> None:
        self.probed.append(agent.name)
        if self.failing:
            raise self.failure


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    opened = SqliteStore(tmp_path / "aop.db")
    await opened.open()
    yield opened
    await opened.close()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def adapter() -> FlakyAdapter:
    return FlakyAdapter()


@pytest.fixture
def manager(store: SqliteStore, clock: ManualClock, adapter: FlakyAdapter) -> AgentManager:
    return AgentManager(store, clock, {"mcp": adapter})


# --- registry and versions ----------------------------------------------------------------


async def test_registered_agent_is_version_one_healthy_and_stored(
    manager: AgentManager, store: SqliteStore, clock: ManualClock
) -> None:
    agent = await manager.register(mcp_spec("sum", "summarize", max_concurrency=2))
    assert (agent.version, agent.health, agent.max_concurrency) == (1, AgentHealth.HEALTHY, 2)
    assert agent.config["input_argument"] == "input"  # defaults are filled in
    assert await store.get_agent("sum") == agent
    assert agent.created_at == clock.now()


async def test_registering_a_live_name_again_is_refused(manager: AgentManager) -> None:
    await manager.register(mcp_spec("sum"))
    with pytest.raises(AgentExists):
        await manager.register(mcp_spec("sum"))


async def test_update_makes_a_new_version_and_history_keeps_the_first(
    manager: AgentManager, clock: ManualClock
) -> None:
    await manager.register(mcp_spec("sum", "summarize"))
    clock.advance(5)
    updated = await manager.update("sum", mcp_spec("sum", "summarize", "translate", weight=4))
    assert (updated.version, updated.weight) == (2, 4)
    assert updated.capabilities == ("summarize", "translate")
    history = await manager.history("sum")
    assert [(v.version, v.capabilities, v.weight) for v in history] == [
        (1, ("summarize",), 1),
        (2, ("summarize", "translate"), 4),
    ]
    assert history[1].created_at == history[0].created_at + 5


async def test_update_with_the_same_spec_keeps_the_version(manager: AgentManager) -> None:
    await manager.register(mcp_spec("sum"))
    assert (await manager.update("sum", mcp_spec("sum"))).version == 1
    assert len(await manager.history("sum")) == 1


async def test_amend_changes_only_the_given_fields(manager: AgentManager) -> None:
    await manager.register(mcp_spec("sum", max_concurrency=3))
    amended = await manager.amend("sum", {"weight": 5, "capabilities": None})
    assert (amended.version, amended.weight, amended.max_concurrency) == (2, 5, 3)
    assert amended.capabilities == ("summarize",)


async def test_changing_the_kind_is_refused_naming_the_field(manager: AgentManager) -> None:
    await manager.register(mcp_spec("sum"))
    with pytest.raises(InvalidAgent) as caught:
        await manager.update("sum", pull_spec("sum"))
    assert caught.value.field == "kind"
    assert "deregister" in str(caught.value)
    assert len(await manager.history("sum")) == 1


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({"name": "-bad", "kind": "pull"}, "name"),
        ({"name": "a", "kind": "robot"}, "kind"),
        ({"name": "a", "kind": "mcp", "config": {"url": "u", "tool": "t"}}, "capabilities"),
        (
            {"name": "a", "kind": "mcp", "capabilities": ["x"], "config": {"url": "u"}},
            "config.tool",
        ),
        (
            {"name": "a", "kind": "fast-agent", "capabilities": ["x"], "config": {"nope": 1}},
            "config.nope",
        ),
        ({"name": "a", "kind": "fast-agent", "capabilities": ["x"], "config": {}}, "config"),
        ({"name": "a", "kind": "pull", "max_concurrency": 0}, "max_concurrency"),
        (
            {"name": "a", "kind": "pull", "config": {"heartbeat_interval": -1}},
            "config.heartbeat_interval",
        ),
    ],
)
def test_invalid_spec_errors_name_the_field(raw: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidAgent) as caught:
        parse_spec(raw)
    assert field in {problem.field for problem in caught.value.problems}
    assert caught.value.status == 422


def test_an_mcp_agent_needs_exactly_one_of_url_and_command() -> None:
    both = {"url": "http://x", "command": ["srv"], "tool": "t"}
    for config in (both, {"tool": "t"}):
        with pytest.raises(InvalidAgent, match="exactly one of `url`"):
            mcp_spec("a", config=config)
    assert mcp_spec("a", config={"command": ["srv"], "tool": "t"}).config["url"] is None


async def test_deregistered_agent_leaves_discovery_but_keeps_its_record(
    manager: AgentManager, clock: ManualClock
) -> None:
    await manager.register(mcp_spec("sum"))
    gone = await manager.deregister("sum")
    assert gone.deregistered_at == clock.now()
    assert await manager.list() == []
    assert (await manager.get("sum")).agent.deregistered_at is not None
    with pytest.raises(AgentNotFound):
        await manager.deregister("sum")
    again = await manager.register(mcp_spec("sum", "translate"))
    assert (again.version, again.deregistered_at) == (2, None)


async def test_unknown_agent_raises_agent_not_found(manager: AgentManager) -> None:
    for call in (manager.get("x"), manager.history("x"), manager.heartbeat("x")):
        with pytest.raises(AgentNotFound):
            await call


async def test_a_new_manager_loads_the_registry_from_the_store(
    manager: AgentManager, store: SqliteStore, clock: ManualClock
) -> None:
    await manager.register(mcp_spec("sum"))
    fresh = AgentManager(store, clock)
    assert [s.agent.name for s in await fresh.list()] == ["sum"]


# --- discovery ------------------------------------------------------------------------------


async def test_list_filters_by_capability_kind_and_health(
    manager: AgentManager, adapter: FlakyAdapter
) -> None:
    await manager.register(mcp_spec("a", "summarize"))
    await manager.register(mcp_spec("b", "translate"))
    await manager.register(pull_spec("c"))

    async def names(**filters: Any) -> list[str]:
        return [status.agent.name for status in await manager.list(**filters)]

    assert await names() == ["a", "b", "c"]
    assert await names(capability="summarize") == ["a", "c"]
    assert await names(kind=AgentKind.PULL) == ["c"]
    adapter.failing = True
    await manager.check_health()
    assert await names(health=AgentHealth.DEGRADED) == ["a", "b"]
    assert await names(health=AgentHealth.HEALTHY, capability="summarize") == ["c"]


# --- health ---------------------------------------------------------------------------------


async def test_silent_pull_agent_degrades_then_goes_offline_and_a_heartbeat_heals_it(
    manager: AgentManager, clock: ManualClock, store: SqliteStore
) -> None:
    await manager.register(pull_spec("puller", interval=10))
    steps = [(19, AgentHealth.HEALTHY), (1, AgentHealth.DEGRADED), (20, AgentHealth.OFFLINE)]
    for seconds, expected in steps:
        clock.advance(seconds)
        await manager.check_health()
        assert (await manager.get("puller")).agent.health is expected
    offline = await store.get_agent("puller")
    assert offline.health_changed_at == clock.now()
    assert "no heartbeat for 40 s" in offline.health_reason
    clock.advance(3)
    status = await manager.heartbeat("puller")
    assert (status.agent.health, status.agent.last_heartbeat_at) == (
        AgentHealth.HEALTHY,
        clock.now(),
    )
    assert await store.get_agent("puller") == status.agent


async def test_health_is_written_only_when_it_changes(
    manager: AgentManager, clock: ManualClock, store: SqliteStore
) -> None:
    await manager.register(pull_spec("puller", interval=10))
    clock.advance(25)
    await manager.check_health()
    changed_at = (await store.get_agent("puller")).health_changed_at
    clock.advance(5)
    await manager.check_health()  # still degraded, reason text would differ: not written
    assert (await store.get_agent("puller")).health_changed_at == changed_at


async def test_failed_probes_degrade_then_make_unhealthy_and_a_success_heals(
    manager: AgentManager, adapter: FlakyAdapter
) -> None:
    await manager.register(mcp_spec("remote"))
    adapter.failing = True
    seen = []
    for _ in range(3):
        await manager.check_health()
        seen.append((await manager.get("remote")).agent.health)
    assert seen == [AgentHealth.DEGRADED, AgentHealth.DEGRADED, AgentHealth.UNHEALTHY]
    assert (
        "3 probes in a row failed: tool 'summarize' is not listed"
        in (await manager.get("remote")).agent.health_reason
    )
    adapter.failing = False
    await manager.check_health()
    assert (await manager.get("remote")).agent.health is AgentHealth.HEALTHY


async def test_an_agent_that_cannot_be_reached_goes_offline(
    manager: AgentManager, adapter: FlakyAdapter
) -> None:
    await manager.register(mcp_spec("remote"))
    adapter.failing = True
    adapter.failure = AgentFailure(FailureKind.UNAVAILABLE, "connection refused")
    for _ in range(3):
        await manager.check_health()
    agent = (await manager.get("remote")).agent
    assert agent.health is AgentHealth.OFFLINE
    assert "connection refused" in agent.health_reason


async def test_agents_of_a_kind_without_adapter_are_left_as_they_are(
    store: SqliteStore, clock: ManualClock
) -> None:
    manager = AgentManager(store, clock, {})
    await manager.register(mcp_spec("remote"))
    await manager.check_health()
    assert (await manager.get("remote")).agent.health is AgentHealth.HEALTHY


class WatchedClock(ManualClock):
    """A ManualClock that says each time something starts sleeping on it."""

    def __init__(self) -> None:
        super().__init__()
        self.sleeping: asyncio.Queue[float] = asyncio.Queue()

    async def sleep_until(self, deadline: float) -> None:
        self.sleeping.put_nowait(deadline)
        await super().sleep_until(deadline)


async def test_the_health_loop_probes_at_start_and_every_probe_interval(
    store: SqliteStore, adapter: FlakyAdapter
) -> None:
    clock = WatchedClock()
    manager = AgentManager(store, clock, {"mcp": adapter}, probe_interval=15)
    await manager.register(mcp_spec("remote"))
    await manager.start()
    try:
        with anyio.fail_after(WAIT):
            assert await clock.sleeping.get() == clock.now() + 15
            assert adapter.probed == ["remote"]
            clock.advance(15)
            await clock.sleeping.get()
        assert adapter.probed == ["remote", "remote"]
    finally:
        await manager.stop()
    await manager.stop()  # idempotent


# --- selection ------------------------------------------------------------------------------


async def test_idle_agents_share_work_by_weight(manager: AgentManager) -> None:
    for name, weight in (("a", 1), ("b", 2), ("c", 1)):
        await manager.register(mcp_spec(name, weight=weight))
    counts: Counter[str] = Counter()
    for _ in range(100):
        lease = await manager.acquire(capability="summarize")
        counts[lease.agent.name] += 1
        manager.release(lease, ok=True)
    assert counts == {"a": 25, "b": 50, "c": 25}


async def test_busy_agents_share_work_by_capacity(manager: AgentManager) -> None:
    for name, capacity in (("a", 1), ("b", 2), ("c", 1)):
        await manager.register(mcp_spec(name, max_concurrency=capacity))
    counts: Counter[str] = Counter()
    for _ in range(25):
        leases = [await manager.acquire(capability="summarize") for _ in range(4)]
        counts.update(lease.agent.name for lease in leases)
        for lease in leases:
            manager.release(lease, ok=True)
    assert counts == {"a": 25, "b": 50, "c": 25}


async def test_the_least_busy_agent_is_picked_first(manager: AgentManager) -> None:
    await manager.register(mcp_spec("a", max_concurrency=4))
    await manager.register(mcp_spec("b", max_concurrency=2))
    held = [await manager.acquire(name="a") for _ in range(3)]  # a at 3/4
    first = await manager.acquire(capability="summarize")
    second = await manager.acquire(capability="summarize")
    assert [first.agent.name, second.agent.name] == ["b", "b"]  # 0/2, then 1/2 < 3/4
    assert (await manager.get("b")).active == 2
    for lease in (*held, first, second):
        manager.release(lease, ok=True)
    assert (await manager.get("a")).active == 0


async def test_acquire_honours_name_and_kinds(manager: AgentManager) -> None:
    await manager.register(mcp_spec("a"))
    await manager.register(pull_spec("p"))
    for _ in range(4):
        lease = await manager.acquire(capability="summarize", kinds={AgentKind.MCP})
        assert lease.agent.name == "a"
        manager.release(lease, ok=True)
    lease = await manager.acquire(name="p")
    assert lease.agent.name == "p"


async def test_a_degraded_agent_is_used_only_when_no_healthy_one_has_room(
    manager: AgentManager, adapter: FlakyAdapter
) -> None:
    await manager.register(mcp_spec("sick"))
    adapter.failing = True
    await manager.check_health()
    adapter.failing = False
    await manager.register(mcp_spec("well"))
    first = await manager.acquire(capability="summarize")
    second = await manager.acquire(capability="summarize")
    assert [first.agent.name, second.agent.name] == ["well", "sick"]


def test_unhealthy_offline_and_full_agents_are_never_chosen() -> None:
    slots = [
        Slot("a", AgentHealth.UNHEALTHY, 0, 1, 1, True),
        Slot("b", AgentHealth.OFFLINE, 0, 1, 1, True),
        Slot("c", AgentHealth.HEALTHY, 1, 1, 1, True),
        Slot("d", AgentHealth.HEALTHY, 0, 1, 1, False),
    ]
    assert choose(slots, {}) is None


async def test_acquire_waits_when_every_agent_is_full_and_a_release_wakes_it(
    manager: AgentManager,
) -> None:
    await manager.register(mcp_spec("only"))
    held = await manager.acquire(capability="summarize")
    waiter = asyncio.create_task(manager.acquire(capability="summarize"))
    await asyncio.sleep(0)
    assert not waiter.done()
    manager.release(held, ok=True)
    with anyio.fail_after(WAIT):
        lease = await waiter
    assert lease.agent.name == "only"


async def test_acquire_waits_for_an_agent_to_be_registered(manager: AgentManager) -> None:
    waiter = asyncio.create_task(manager.acquire(capability="summarize"))
    await asyncio.sleep(0)
    assert not waiter.done()
    await manager.register(mcp_spec("late"))
    with anyio.fail_after(WAIT):
        assert (await waiter).agent.name == "late"


# --- circuit breaker ------------------------------------------------------------------------


async def test_breaker_opens_after_three_failures_then_half_opens_for_one_trial(
    manager: AgentManager, clock: ManualClock
) -> None:
    await manager.register(mcp_spec("shaky", max_concurrency=5))
    for _ in range(3):
        manager.release(await manager.acquire(name="shaky"), ok=False)
    breaker = (await manager.get("shaky")).breaker
    assert (breaker.state, breaker.failures) == (BreakerState.OPEN, 3)
    assert breaker.open_until == clock.now() + 30

    refused = asyncio.create_task(manager.acquire(name="shaky"))
    await asyncio.sleep(0)
    assert not refused.done()  # open: refused while the cooldown runs
    clock.advance(30)
    with anyio.fail_after(WAIT):
        trial = await refused  # woken by the end of the cooldown
    assert (await manager.get("shaky")).breaker.state is BreakerState.HALF_OPEN
    second = asyncio.create_task(manager.acquire(name="shaky"))
    await asyncio.sleep(0)
    assert not second.done()  # exactly one trial
    manager.release(trial, ok=True)
    with anyio.fail_after(WAIT):
        manager.release(await second, ok=True)
    assert (await manager.get("shaky")).breaker.state is BreakerState.CLOSED


async def test_a_failed_trial_opens_the_breaker_again(
    manager: AgentManager, clock: ManualClock
) -> None:
    await manager.register(mcp_spec("shaky"))
    for _ in range(3):
        manager.release(await manager.acquire(name="shaky"), ok=False)
    clock.advance(30)
    manager.release(await manager.acquire(name="shaky"), ok=False)
    breaker = (await manager.get("shaky")).breaker
    assert (breaker.state, breaker.open_until) == (BreakerState.OPEN, clock.now() + 30)


async def test_a_success_resets_the_failure_count(manager: AgentManager) -> None:
    await manager.register(mcp_spec("ok"))
    for ok in (False, False, True, False, False):
        manager.release(await manager.acquire(name="ok"), ok=ok)
    breaker = (await manager.get("ok")).breaker
    assert (breaker.state, breaker.failures) == (BreakerState.CLOSED, 2)


# --- files ----------------------------------------------------------------------------------


async def test_agents_load_from_yaml_files_and_unchanged_files_keep_their_version(
    manager: AgentManager, tmp_path: Path
) -> None:
    folder = tmp_path / "agents"
    folder.mkdir()
    (folder / "summarizer.yaml").write_text(
        "name: summarizer\nkind: fast-agent\ncapabilities: [summarize]\n"
        "config: {instruction: Summarize the input.}\n"
    )
    (folder / "more.yaml").write_text(
        "- {name: puller, kind: pull, config: {heartbeat_interval: 5}}\n"
        "- {name: remote, kind: mcp, capabilities: [x], config: {command: [srv], tool: t}}\n"
    )
    (folder / "fastagent.config.yaml").write_text("default_model: passthrough\n")
    (folder / "README.md").write_text("# agents\n")
    loaded = await manager.load_agent_files(folder)
    assert [agent.name for agent in loaded] == ["puller", "remote", "summarizer"]
    (folder / "summarizer.yaml").write_text(
        "name: summarizer\nkind: fast-agent\ncapabilities: [summarize]\n"
        "config: {instruction: Summarize in one line.}\n"
    )
    again = await manager.load_agent_files(folder)
    assert [(agent.name, agent.version) for agent in again] == [
        ("puller", 1),
        ("remote", 1),
        ("summarizer", 2),
    ]


async def test_a_bad_agent_file_names_the_file_and_field_and_loads_nothing(
    manager: AgentManager, tmp_path: Path
) -> None:
    (tmp_path / "good.yaml").write_text("{name: good, kind: pull}\n")
    (tmp_path / "bad.yaml").write_text("{name: bad, kind: mcp, capabilities: [x]}\n")
    with pytest.raises(InvalidAgent) as caught:
        await manager.load_agent_files(tmp_path)
    problem = caught.value.problems[0]
    assert (problem.field, "bad.yaml" in problem.message) == ("config.tool", True)
    assert await manager.list() == []
