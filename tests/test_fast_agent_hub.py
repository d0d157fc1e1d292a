"""Fast-Agent agents drive the hub over MCP: the AgentCards of agents/ on the `passthrough`
model (no LLM key), with `aop stdio` on a database in tmp_path as their MCP server `aop`.

`***CALL_TOOL aop__<tool> {json}` makes the passthrough model call a hub tool; its reply is the
tool's result as the model saw it (the structured content as JSON text).
"""

from __future__ import annotations

import json
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import pytest
import yaml
from mcp_support import HELLO, WAIT

from aop_mcp.agents.files import read_specs
from aop_mcp.models import RunStatus, TaskStatus
from aop_mcp.store.sqlite import SqliteStore

if TYPE_CHECKING:
    from fast_agent.core.agent_app import AgentApp
    from fast_agent.interfaces import AgentProtocol

pytestmark = pytest.mark.anyio

AGENTS = Path(__file__).resolve().parents[1] / "agents"
CARDS = AGENTS / "cards"
SERVER = "aop"  # Fast-Agent names a server's tools `<server>__<tool>`
WORKER = "hub_worker"

SUMMARIES = {
    "name": "summaries",
    "inputs": {"text": {"type": "string"}},
    "tasks": [
        {
            "id": "brief",
            "run": {
                "executor": "agent",
                "capability": "summarize",
                "input": "Summarize: {{ inputs.text }}",
            },
        },
        {
            "id": "publish",
            "needs": ["brief"],
            "run": {"executor": "local", "command": ["echo", "{{ tasks.brief.output }}"]},
        },
    ],
}


def write_config(tmp_path: Path) -> Path:
    """A Fast-Agent config of the test's own: server `aop` is `aop stdio` on tmp_path.

    A stdio server gets only HOME, PATH, USER, LOGNAME, SHELL, TERM and its `env`.
    """
    server = {
        "command": sys.executable,
        "args": ["-m", "aop_mcp", "stdio", "--db", str(tmp_path / "aop.db")],
        "env": {"AOP_DATA_DIR": str(tmp_path / "data")},
        "cwd": str(tmp_path),
    }
    config = {"default_model": "passthrough", "mcp": {"servers": {SERVER: server}}}
    path = tmp_path / "fast-agent.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@asynccontextmanager
async def hub_agents(tmp_path: Path) -> AsyncIterator[AgentApp]:
    """The agents of agents/cards, running, connected to a hub of their own."""
    from fast_agent import FastAgent

    fast = FastAgent(
        "aop-test",
        config_path=str(write_config(tmp_path)),
        parse_cli_args=False,
        quiet=True,
        isolated=True,
    )
    assert sorted(fast.load_agents(CARDS)) == ["hub_operator", WORKER]
    async with fast.run() as app:
        yield app


async def call(agent: AgentProtocol, tool: str, /, **arguments: Any) -> dict[str, Any]:
    """Make the agent call a hub tool; the tool's structured result, as the agent got it."""
    with anyio.fail_after(WAIT):
        reply = await agent.generate(f"***CALL_TOOL {SERVER}__{tool} {json.dumps(arguments)}")
    (result,) = agent.message_history[-2].tool_results.values()  # the turn that answered it
    texts = [getattr(block, "text", "") for block in result.content]
    assert not result.is_error, texts
    assert result.structured_content is not None
    assert json.loads(reply.last_text()) == result.structured_content  # what the model saw
    return result.structured_content


async def stored_run(db: Path, run_id: str) -> tuple[Any, dict[str, Any]]:
    """The run and its task runs by id, read from the hub's SQLite file."""
    store = SqliteStore(db)
    await store.open()
    try:
        run = await store.get_run(run_id)
        tasks = {task.task_id: task for task in await store.get_task_runs(run_id)}
    finally:
        await store.close()
    return run, tasks


@pytest.mark.slow
async def test_an_agent_defines_starts_and_waits_for_a_run_through_the_hub(
    tmp_path: Path,
) -> None:
    with anyio.fail_after(3 * WAIT):
        async with hub_agents(tmp_path) as app:
            operator = app["hub_operator"]
            checked = await call(operator, "workflow_validate", document=HELLO)
            defined = await call(operator, "workflow_define", document=HELLO)
            started = await call(operator, "run_start", workflow="hello")
            ended = await call(operator, "run_wait", run_id=started["id"], timeout_seconds=WAIT)
    assert checked["valid"] is True
    assert defined["name"] == "hello"
    assert (ended["finished"], ended["status"]) == (True, "succeeded")
    run, tasks = await stored_run(tmp_path / "aop.db", started["id"])
    assert (run.workflow, run.status) == ("hello", RunStatus.SUCCEEDED)
    assert tasks["shout"].output.stdout == "HELLO!\n"


@pytest.mark.slow
async def test_a_pull_agent_registers_claims_and_completes_an_agent_task(tmp_path: Path) -> None:
    text = "The quick brown fox jumps over the lazy dog, and the dog sleeps on."
    with anyio.fail_after(3 * WAIT):
        async with hub_agents(tmp_path) as app:
            worker = app[WORKER]
            registered = await call(
                worker,
                "agent_register",
                name=WORKER,
                kind="pull",
                capabilities=["summarize"],
                config={"heartbeat_interval": 120},
            )
            await call(worker, "workflow_define", document=SUMMARIES)
            started = await call(worker, "run_start", workflow="summaries", inputs={"text": text})
            claimed = await call(worker, "task_claim", agent=WORKER, wait_seconds=WAIT)
            claim = claimed["claim"]
            assert claim is not None
            # The work itself: the model answers the task's input (passthrough echoes it).
            with anyio.fail_after(WAIT):
                answer = (await worker.generate(claim["input"])).last_text()
            await call(
                worker, "task_complete", agent=WORKER, claim_id=claim["claim_id"], result=answer
            )
            ended = await call(worker, "run_wait", run_id=started["id"], timeout_seconds=WAIT)
    assert (registered["name"], registered["kind"]) == (WORKER, "pull")
    assert (claim["run_id"], claim["task_id"]) == (started["id"], "brief")
    assert (claim["capability"], claim["input"]) == ("summarize", f"Summarize: {text}")
    assert (ended["finished"], ended["status"]) == (True, "succeeded")
    run, tasks = await stored_run(tmp_path / "aop.db", started["id"])
    assert run.status is RunStatus.SUCCEEDED
    assert tasks["brief"].status is TaskStatus.SUCCEEDED
    assert tasks["brief"].output.stdout == answer
    assert tasks["publish"].output.stdout == f"Summarize: {text}\n"  # the answer went on


def test_the_agent_cards_and_the_fast_agent_config_load() -> None:
    from fast_agent.config import Settings
    from fast_agent.core.agent_card_loader import load_agent_cards

    cards = {card.name: card.agent_data["config"] for card in load_agent_cards(CARDS)}
    assert set(cards) == {"hub_operator", WORKER}
    for config in cards.values():
        assert config.servers == [SERVER]
        assert config.model is None  # left to `default_model` or `--model`
    assert "workflow_validate" in cards["hub_operator"].instruction
    assert "task_claim" in cards[WORKER].instruction

    raw = yaml.safe_load((AGENTS / "fast-agent.yaml").read_text())
    server = Settings.model_validate(raw).mcp.servers[SERVER]
    assert (server.transport, server.command, server.args) == (
        "stdio",
        "uv",
        ["run", "aop", "stdio"],
    )
    # AOP_AGENTS_DIR may point at agents/: Fast-Agent's files there are not agent specs.
    assert read_specs(AGENTS) == []
