"""Agent tasks in real runs: pushed to an MCP agent, and claimed by pull agents over MCP."""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from engine_support import WAIT, hub_on, next_event
from mcp import Client
from test_agent_executor import ToolServer, served  # noqa: F401  (the fixture)

from aop_mcp.agents.spec import parse_spec
from aop_mcp.api.schemas import TaskOutputView
from aop_mcp.config import load_settings
from aop_mcp.engine import ManualClock
from aop_mcp.errors import ConfigError
from aop_mcp.mcp.server import create_mcp
from aop_mcp.mcp.views import output_view
from aop_mcp.models import AttemptStatus, FailureKind, RunStatus

pytestmark = pytest.mark.anyio


def summarize_workflow(*task_ids: str, **task_fields: Any) -> dict[str, Any]:
    run = {"executor": "agent", "capability": "summarize", "input": "the quick brown fox jumps"}
    return {
        "name": "summaries",
        "tasks": [{"id": task_id, "run": run, **task_fields} for task_id in task_ids],
    }


def agent_spec(name: str, kind: str, config: dict[str, Any] | None = None) -> Any:
    spec = {"name": name, "kind": kind, "capabilities": ["summarize"]}
    return parse_spec(spec if config is None else {**spec, "config": config})


async def call(client: Client, tool: str, **arguments: Any) -> dict[str, Any]:
    result = await client.call_tool(tool, arguments)
    assert not result.is_error, result.content
    return result.structured_content


async def test_an_agent_task_is_done_by_a_registered_mcp_agent(
    tmp_path,
    served: ToolServer,  # noqa: F811
):
    config = {"url": served.url, "tool": "summarize"}
    async with hub_on(tmp_path) as hub:
        await hub.agents.register(agent_spec("summarizer", "mcp", config))
        await hub.workflows.define(summarize_workflow("brief"))
        run = await hub.runs.start("summaries")
        with anyio.fail_after(WAIT):
            done = await hub.runs.wait(run.id)
        task = await hub.runs.task(run.id, "brief")
        status = await hub.agents.get("summarizer")
    assert done.status is RunStatus.SUCCEEDED, task.task.error
    assert task.task.output.json == {"summary": "the quick brown", "words": 5}
    assert status.active == 0  # the slot went back


async def test_an_agents_attempts_are_listed_under_it_but_not_a_cache_hit_of_its_answer(
    tmp_path,
    served: ToolServer,  # noqa: F811
):
    config = {"url": served.url, "tool": "summarize"}
    async with hub_on(tmp_path) as hub:
        await hub.agents.register(agent_spec("summarizer", "mcp", config))
        await hub.workflows.define(summarize_workflow("brief", cache=True))
        runs = []
        for _ in range(2):
            run = await hub.runs.start("summaries")
            with anyio.fail_after(WAIT):
                runs.append(await hub.runs.wait(run.id))
        served_by = await hub.store.list_agent_attempts("summarizer")
        (first,) = await hub.store.get_run_attempts(runs[0].id)
        (hit,) = await hub.store.get_run_attempts(runs[1].id)
        reused = await hub.runs.task(runs[1].id, "brief")
    assert [run.status for run in runs] == [RunStatus.SUCCEEDED, RunStatus.SUCCEEDED]
    assert served_by == [first]
    assert first.output.agent == "summarizer"
    # The MCP tools and the REST API name it too.
    assert output_view(first.output).agent == "summarizer"
    assert TaskOutputView.model_validate(first.output.to_dict()).agent == "summarizer"
    assert reused.task.cached
    assert hit.output.json == first.output.json
    assert hit.output.agent is None


async def test_two_pull_agents_claim_distinct_tasks_and_an_expired_lease_goes_to_the_other(
    tmp_path,
):
    clock = ManualClock()
    retry = {"max_attempts": 2, "backoff": {"initial": "1s", "jitter": 0}}
    async with hub_on(tmp_path, clock=clock) as hub, hub.bus.subscribe() as events:
        for name in ("puller-1", "puller-2"):
            await hub.agents.register(agent_spec(name, "pull"))
        door = create_mcp()
        async with door.attached(hub), Client(door.server) as client:
            await hub.workflows.define(summarize_workflow("one", "two", retry=retry))
            run = await hub.runs.start("summaries")
            with anyio.fail_after(WAIT):
                first = await call(client, "task_claim", agent="puller-1", wait_seconds=WAIT)
                second = await call(client, "task_claim", agent="puller-2", wait_seconds=WAIT)
            first, second = first["claim"], second["claim"]
            assert {first["task_id"], second["task_id"]} == {"one", "two"}  # never one twice

            # puller-2 finishes its task; puller-1 goes quiet and its lease runs out.
            done_2 = {"agent": "puller-2", "claim_id": second["claim_id"], "result": "by 2"}
            await call(client, "task_complete", **done_2)
            clock.advance(60)  # the default lease
            retrying = await next_event(events, "task.retrying", first["task_id"])
            assert retrying.data["kind"] == "timeout"
            clock.advance(1)  # the backoff

            with anyio.fail_after(WAIT):
                again = await call(client, "task_claim", agent="puller-2", wait_seconds=WAIT)
            again = again["claim"]
            assert again["task_id"] == first["task_id"]
            assert again["attempt"] == 2
            redone = {"agent": "puller-2", "claim_id": again["claim_id"], "result": "by 2 again"}
            await call(client, "task_complete", **redone)
            late = {"agent": "puller-1", "claim_id": first["claim_id"], "result": "late"}
            refused = await client.call_tool("task_complete", late)
            with anyio.fail_after(WAIT):
                done = await hub.runs.wait(run.id)
            retried = await hub.runs.task(run.id, first["task_id"])
    assert refused.is_error
    assert "expired" in refused.content[0].text
    assert done.status is RunStatus.SUCCEEDED
    assert [a.status for a in retried.attempts] == [AttemptStatus.FAILED, AttemptStatus.SUCCEEDED]
    assert retried.attempts[0].error.kind is FailureKind.TIMEOUT
    assert retried.task.output.stdout == "by 2 again"


async def test_only_pull_agents_may_claim_and_nothing_waiting_means_null(tmp_path):
    async with hub_on(tmp_path) as hub:
        await hub.agents.register(agent_spec("puller", "pull"))
        pusher = {"url": "http://127.0.0.1:9/mcp", "tool": "t"}
        await hub.agents.register(agent_spec("pusher", "mcp", pusher))
        door = create_mcp()
        async with door.attached(hub), Client(door.server) as client:
            nothing = await call(client, "task_claim", agent="puller")
            refused = await client.call_tool("task_claim", {"agent": "pusher"})
            unknown = await client.call_tool("task_claim", {"agent": "ghost"})
    assert nothing == {"claim": None}
    assert refused.is_error
    assert "kind 'pull'" in refused.content[0].text
    assert unknown.is_error


async def test_agents_described_in_the_agents_directory_are_registered_at_start(tmp_path):
    agents = tmp_path / "agents"
    agents.mkdir()
    (agents / "worker.yaml").write_text("name: worker\nkind: pull\ncapabilities: [summarize]\n")
    (agents / "fast-agent.secrets.yaml").write_text("anthropic: {api_key: x}\n")  # not an agent
    async with hub_on(tmp_path, agents_dir=agents) as hub:
        [status] = await hub.agents.list(capability="summarize")
    async with hub_on(tmp_path, agents_dir=agents) as hub:  # a restart: the same version
        history = await hub.agents.history("worker")
    assert status.agent.name == "worker"
    assert len(history) == 1


def test_agents_directory_setting_must_name_a_directory(tmp_path):
    with pytest.raises(ConfigError, match="AOP_AGENTS_DIR"):
        load_settings({"AOP_DATA_DIR": str(tmp_path), "AOP_AGENTS_DIR": str(tmp_path / "nope")})


@pytest.mark.slow
async def test_an_agent_task_is_done_by_a_fast_agent_agent(tmp_path):
    config = {"instruction": "Answer with the input.", "model": "passthrough"}
    async with hub_on(tmp_path) as hub:
        await hub.agents.register(agent_spec("echo", "fast-agent", config))
        await hub.workflows.define(summarize_workflow("echoed"))
        run = await hub.runs.start("summaries")
        with anyio.fail_after(WAIT):
            done = await hub.runs.wait(run.id)
        task = await hub.runs.task(run.id, "echoed")
    assert done.status is RunStatus.SUCCEEDED, task.task.error
    assert task.task.output.stdout == "the quick brown fox jumps"
