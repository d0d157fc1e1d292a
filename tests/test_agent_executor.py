"""The `agent` executor: a task's input goes to an agent picked by capability or name.

The agents here are real: a small MCP server this test serves on 127.0.0.1 (and starts over
stdio), and a Fast-Agent agent on the `passthrough` model, which needs no LLM key. The picker
is a minimal one in this module; the hub's Agent Manager is tested on its own.
"""

from __future__ import annotations

import asyncio
import sys
import textwrap
from collections.abc import AsyncIterator, Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import BaseModel
from servers import free_port, serve_in_loop

from aop_mcp.agents.fast_agent_adapter import FastAgentAdapter
from aop_mcp.agents.mcp_remote import McpAgentAdapter
from aop_mcp.agents.pull import Claim, PullQueue
from aop_mcp.engine import ManualClock
from aop_mcp.executors import AgentExecutor, default_executors
from aop_mcp.models import Agent, AgentKind, FailureKind, TaskOutput
from aop_mcp.ports.agent import AgentAdapter, AgentFailure, AgentLease, AgentReply
from aop_mcp.ports.executor import AttemptFailed, ExecutionRequest
from aop_mcp.workflow import AgentRun

pytestmark = pytest.mark.anyio

WAIT = 20  # seconds any single wait in a test may take before it fails


# --- a minimal picker: one agent, a fixed number of slots ------------------------------------


@dataclass
class OnePicker:
    """An AgentPicker with one agent: `acquire` waits for one of its `max_concurrency` slots."""

    agent: Agent
    honour_kinds: bool = True  # False: a careless picker, to test the executor's own guard
    released: list[bool] = field(default_factory=list)  # the `ok` of every release, in order

    def __post_init__(self) -> None:
        self._slots = asyncio.Semaphore(self.agent.max_concurrency)
        self._leases = 0

    async def acquire(
        self,
        *,
        capability: str | None,
        name: str | None,
        kinds: Collection[AgentKind] | None = None,
    ) -> AgentLease:
        assert capability in self.agent.capabilities or name == self.agent.name
        if self.honour_kinds and kinds is not None and self.agent.kind not in kinds:
            await asyncio.Event().wait()  # no agent of those kinds: wait, as the manager does
        await self._slots.acquire()
        self._leases += 1
        return AgentLease(self.agent, f"lease-{self._leases}")

    def release(self, lease: AgentLease, *, ok: bool) -> None:
        self.released.append(ok)
        self._slots.release()


def make_agent(kind: AgentKind, config: Mapping[str, Any], slots: int = 1) -> Agent:
    return Agent(
        name=f"{kind}-agent",
        kind=kind,
        capabilities=("summarize",),
        max_concurrency=slots,
        weight=1,
        config=dict(config),
        version=1,
        created_at=0.0,
        updated_at=0.0,
    )


def request(spec: AgentRun, timeout: float | None = 10.0, cap: int = 65536) -> ExecutionRequest:
    return ExecutionRequest(
        run_id="run_1",
        task_id="summarize",
        attempt=1,
        spec=spec,
        timeout=timeout,
        work_root=Path("/nonexistent"),  # the agent executor never writes files
        output_cap=cap,
    )


def task(message: str, *, output: str = "text", agent: str | None = None) -> AgentRun:
    capability = None if agent else "summarize"
    return AgentRun(
        executor="agent", capability=capability, agent=agent, input=message, output=output
    )


def executor_for(agent: Agent, **kwargs: Any) -> tuple[AgentExecutor, OnePicker]:
    picker = OnePicker(agent)
    adapters: dict[str, AgentAdapter] = {
        "mcp": McpAgentAdapter(),
        "fast-agent": FastAgentAdapter(config_path=kwargs.pop("config_path", None)),
    }
    return AgentExecutor(picker, adapters, **kwargs), picker


async def run(executor: AgentExecutor, req: ExecutionRequest) -> TaskOutput:
    with anyio.fail_after(WAIT):
        return await executor.execute(req)


async def failure(executor: AgentExecutor, req: ExecutionRequest) -> AttemptFailed:
    with pytest.raises(AttemptFailed) as caught:
        await run(executor, req)
    return caught.value


# --- a real MCP server, served on 127.0.0.1 by uvicorn in this test's loop ----------------


class Summary(BaseModel):
    summary: str
    words: int


@dataclass
class ToolServer:
    url: str
    slow_started: asyncio.Event
    finish_slow: asyncio.Event


def tool_server(slow_started: asyncio.Event, finish_slow: asyncio.Event) -> MCPServer:
    server = MCPServer("summarizer")

    @server.tool()
    def summarize(input: str) -> Summary:
        """The first three words, and how many there were."""
        words = input.split()
        return Summary(summary=" ".join(words[:3]), words=len(words))

    @server.tool()
    def refuse(input: str) -> str:
        """Always reports an error, as a tool does when it cannot do the work."""
        raise ToolError(f"cannot summarize {input!r}: quota exhausted")

    @server.tool(structured_output=False)
    def prose(input: str) -> str:
        """Answers in prose, never JSON (a `str` tool would also give {"result": ...})."""
        return f"In short: {input}"

    @server.tool(structured_output=False)
    async def slow(input: str) -> str:
        """Answers only once the test lets it."""
        slow_started.set()
        await finish_slow.wait()
        return input

    return server


@pytest.fixture
async def served() -> AsyncIterator[ToolServer]:
    slow_started, finish_slow = asyncio.Event(), asyncio.Event()
    app = tool_server(slow_started, finish_slow).streamable_http_app()
    # A call still in the slow tool must not hold the shutdown up.
    async with serve_in_loop(app, before_shutdown=finish_slow.set) as server:
        yield ToolServer(f"{server.url}/mcp", slow_started, finish_slow)


def mcp_agent(url: str, tool: str = "summarize", slots: int = 1) -> Agent:
    return make_agent(AgentKind.MCP, {"url": url, "tool": tool, "headers": {"X-Aop": "1"}}, slots)


# --- mcp agents -----------------------------------------------------------------------------


async def test_an_mcp_agent_summary_comes_back_as_text_and_json(served: ToolServer) -> None:
    executor, picker = executor_for(mcp_agent(served.url))
    output = await run(executor, request(task("the quick brown fox jumps")))
    assert output.json == {"summary": "the quick brown", "words": 5}
    assert '"summary"' in output.stdout  # the tool's text block: its result as JSON text
    assert (output.exit_code, output.attempt) == (None, 1)
    assert picker.released == [True]


async def test_a_tool_error_fails_the_attempt_as_agent_error(served: ToolServer) -> None:
    executor, picker = executor_for(mcp_agent(served.url, tool="refuse"))
    failed = await failure(executor, request(task("the report")))
    assert failed.error.kind is FailureKind.AGENT_ERROR
    assert "quota exhausted" in failed.error.message
    assert "mcp-agent" in failed.error.message
    assert picker.released == [False]


async def test_an_mcp_agent_that_is_down_is_unavailable() -> None:
    executor, picker = executor_for(mcp_agent(f"http://127.0.0.1:{free_port()}/mcp"))
    failed = await failure(executor, request(task("anything")))
    assert failed.error.kind is FailureKind.UNAVAILABLE
    assert "ConnectError" in failed.error.message
    assert picker.released == [False]


async def test_no_free_slot_within_the_timeout_is_unavailable(served: ToolServer) -> None:
    executor, picker = executor_for(mcp_agent(served.url))
    held = await picker.acquire(capability="summarize", name=None)  # the only slot
    failed = await failure(executor, request(task("anything"), timeout=0.2))
    assert failed.error.kind is FailureKind.UNAVAILABLE
    assert failed.error.message == (
        "no healthy agent with capability 'summarize' had a free slot within 0.2s"
    )
    picker.release(held, ok=True)
    assert picker.released == [True]  # the failed attempt had nothing to give back


async def test_a_named_agent_without_a_free_slot_is_unavailable_too(served: ToolServer) -> None:
    executor, picker = executor_for(mcp_agent(served.url), default_wait=0.1)
    await picker.acquire(capability=None, name="mcp-agent")
    failed = await failure(executor, request(task("x", agent="mcp-agent"), timeout=None))
    assert failed.error.kind is FailureKind.UNAVAILABLE
    assert failed.error.message.startswith("agent 'mcp-agent' was not healthy")
    assert failed.error.message.endswith("within 0.1s")


async def test_a_slow_tool_times_out_and_gives_its_slot_back(served: ToolServer) -> None:
    executor, picker = executor_for(mcp_agent(served.url, tool="slow"))
    failed = await failure(executor, request(task("wait"), timeout=0.5))
    assert failed.error.kind is FailureKind.TIMEOUT
    assert failed.error.message == "agent 'mcp-agent' did not answer within 0.5s"
    assert served.slow_started.is_set()
    assert picker.released == [False]


async def test_a_cancelled_attempt_gives_its_slot_back_and_stays_cancelled(
    served: ToolServer,
) -> None:
    executor, picker = executor_for(mcp_agent(served.url, tool="slow"))
    attempt = asyncio.create_task(executor.execute(request(task("wait"), timeout=None)))
    with anyio.fail_after(WAIT):
        await served.slow_started.wait()
    attempt.cancel()
    with anyio.fail_after(WAIT), pytest.raises(asyncio.CancelledError):
        await attempt
    assert picker.released == [True]  # cancelling is no fault of the agent's


async def test_a_json_task_with_a_prose_reply_is_invalid_output(served: ToolServer) -> None:
    executor, picker = executor_for(mcp_agent(served.url, tool="prose"))
    failed = await failure(executor, request(task("the news", output="json")))
    assert failed.error.kind is FailureKind.INVALID_OUTPUT
    assert "In short: the news" in failed.error.message
    assert failed.output is not None
    assert failed.output.stdout == "In short: the news"
    assert picker.released == [False]
    # The same reply is fine for a task that wants text.
    output = await run(executor, request(task("the news")))
    assert (output.stdout, output.json) == ("In short: the news", None)


async def test_a_long_reply_is_capped_and_its_json_dropped(served: ToolServer) -> None:
    executor, _ = executor_for(mcp_agent(served.url))
    output = await run(executor, request(task("word " * 50), cap=20))
    assert output.stdout_truncated
    assert len(output.stdout) == 20
    assert output.json is None
    failed = await failure(executor, request(task("word " * 50, output="json"), cap=20))
    assert failed.error.kind is FailureKind.INVALID_OUTPUT
    assert "larger than the output cap" in failed.error.message


async def test_the_mcp_probe_lists_the_tools(served: ToolServer) -> None:
    adapter = McpAgentAdapter()
    with anyio.fail_after(WAIT):
        await adapter.probe(mcp_agent(served.url))
        with pytest.raises(AgentFailure) as missing:
            await adapter.probe(mcp_agent(served.url, tool="translate"))
        with pytest.raises(AgentFailure) as down:
            await adapter.probe(mcp_agent(f"http://127.0.0.1:{free_port()}/mcp"))
    assert missing.value.kind is FailureKind.AGENT_ERROR
    assert "no tool 'translate'" in missing.value.message
    assert "summarize" in missing.value.message
    assert down.value.kind is FailureKind.UNAVAILABLE


STDIO_SERVER = """
import sys
from mcp.server.mcpserver import MCPServer

server = MCPServer("stdio-summarizer")

@server.tool()
def shout(text: str) -> str:
    import os
    return text.upper() + os.environ["SUFFIX"]

server.run(transport="stdio")
"""


@pytest.mark.slow
async def test_an_mcp_agent_started_over_stdio_answers(tmp_path: Path) -> None:
    script = tmp_path / "server.py"
    script.write_text(textwrap.dedent(STDIO_SERVER))
    config = {
        "command": [sys.executable, str(script)],
        "env": {"SUFFIX": "!"},
        "tool": "shout",
        "input_argument": "text",
    }
    executor, picker = executor_for(make_agent(AgentKind.MCP, config))
    output = await run(executor, request(task("hello")))
    assert output.stdout == "HELLO!"
    assert picker.released == [True]


# --- which agent served an attempt ----------------------------------------------------------


async def test_an_agents_outputs_name_it(served: ToolServer) -> None:
    executor, _ = executor_for(mcp_agent(served.url, tool="prose"))
    output = await run(executor, request(task("the news")))
    assert output.agent == "mcp-agent"
    invalid = await failure(executor, request(task("the news", output="json")))
    assert invalid.error.kind is FailureKind.INVALID_OUTPUT
    assert (invalid.output.stdout, invalid.output.agent) == ("In short: the news", "mcp-agent")


async def test_an_agents_failures_carry_an_output_that_names_it(served: ToolServer) -> None:
    executor, _ = executor_for(mcp_agent(served.url, tool="refuse"))
    refused = await failure(executor, request(task("the report"), cap=1000))
    assert refused.error.kind is FailureKind.AGENT_ERROR
    assert refused.output == TaskOutput(
        duration=refused.output.duration, attempt=1, cap_bytes=1000, agent="mcp-agent"
    )
    assert refused.output.duration > 0
    executor, _ = executor_for(mcp_agent(served.url, tool="slow"))
    late = await failure(executor, request(task("wait"), timeout=0.2))
    assert late.error.kind is FailureKind.TIMEOUT
    assert late.output.agent == "mcp-agent"


async def test_a_failure_before_an_agent_had_the_task_names_none(served: ToolServer) -> None:
    executor, picker = executor_for(mcp_agent(served.url))
    await picker.acquire(capability="summarize", name=None)  # the only slot
    failed = await failure(executor, request(task("anything"), timeout=0.1))
    assert failed.error.kind is FailureKind.UNAVAILABLE
    assert failed.output is None


@dataclass
class PullPicker(OnePicker):
    """Its agent is a pull agent: the executor offers the task on the pull queue."""

    def kinds_of(self, *, capability: str | None, name: str | None) -> frozenset[AgentKind]:
        return frozenset({self.agent.kind})


def pull_executor() -> tuple[AgentExecutor, PullQueue]:
    queue = PullQueue(ManualClock())
    picker = PullPicker(make_agent(AgentKind.PULL, {}))
    return AgentExecutor(picker, {}, pull=queue), queue


async def claimed_by(queue: PullQueue, agent: str) -> Claim:
    with anyio.fail_after(WAIT):
        claim = await queue.claim_within(agent, ["summarize"], 30, WAIT)
    assert claim is not None
    return claim


async def test_a_pull_agents_result_and_its_failures_name_it() -> None:
    executor, queue = pull_executor()
    done = asyncio.ensure_future(run(executor, request(task("x"))))
    queue.complete("puller-1", (await claimed_by(queue, "puller-1")).id, "the answer")
    output = await done
    assert (output.stdout, output.agent) == ("the answer", "puller-1")

    failing = asyncio.ensure_future(failure(executor, request(task("x"))))
    queue.fail("puller-2", (await claimed_by(queue, "puller-2")).id, "no", retryable=True)
    failed = await failing
    assert failed.error.kind is FailureKind.AGENT_ERROR
    assert failed.output.agent == "puller-2"

    slow = asyncio.ensure_future(failure(executor, request(task("x"), timeout=0.2)))
    await claimed_by(queue, "puller-3")
    late = await slow
    assert late.error.kind is FailureKind.TIMEOUT
    assert "'puller-3' did not finish within 0.2s" in late.error.message
    assert late.output.agent == "puller-3"


async def test_a_task_no_pull_agent_claimed_names_none() -> None:
    executor, _ = pull_executor()
    failed = await failure(executor, request(task("x"), timeout=0.05))
    assert failed.error.kind is FailureKind.UNAVAILABLE
    assert failed.output is None


# --- the executor's own rules ---------------------------------------------------------------


class Exploding:
    """An adapter that breaks the rule and lets its driver's error out."""

    kind = "mcp"

    async def invoke(self, agent: Agent, message: str) -> AgentReply:
        raise KeyError("driver detail")

    async def probe(self, agent: Agent) -> None:
        return None


async def test_an_adapter_that_raises_anything_else_gives_agent_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    picker = OnePicker(mcp_agent("http://unused"))
    executor = AgentExecutor(picker, {"mcp": Exploding()})
    failed = await failure(executor, request(task("x")))
    assert failed.error.kind is FailureKind.AGENT_ERROR
    assert "KeyError" in failed.error.message
    assert "agent adapter raised" in caplog.text
    assert picker.released == [False]


async def test_only_agents_of_kinds_with_an_adapter_are_asked_for() -> None:
    picker = OnePicker(make_agent(AgentKind.PULL, {}))
    executor = AgentExecutor(picker, {"mcp": McpAgentAdapter()})
    failed = await failure(executor, request(task("x"), timeout=0.1))
    assert failed.error.kind is FailureKind.UNAVAILABLE
    assert "had a free slot within 0.1s" in failed.error.message
    # A picker that ignores `kinds` gets the lease back and the task fails the same way.
    careless = OnePicker(make_agent(AgentKind.PULL, {}), honour_kinds=False)
    executor = AgentExecutor(careless, {"mcp": McpAgentAdapter()})
    failed = await failure(executor, request(task("x")))
    assert failed.error.kind is FailureKind.UNAVAILABLE
    assert "of kind 'pull'" in failed.error.message
    assert careless.released == [True]  # the mismatch is not the agent's fault


def test_the_agent_executor_is_built_only_with_a_picker() -> None:
    assert "agent" not in default_executors()
    picker = OnePicker(make_agent(AgentKind.PULL, {}))
    executors = default_executors(picker=picker)
    assert executors["agent"].name == "agent"


# --- fast-agent agents ----------------------------------------------------------------------


def fast_agent(**config: Any) -> Agent:
    return make_agent(AgentKind.FAST_AGENT, {"instruction": "Summarize.", **config})


@pytest.fixture
def fast_agent_config(tmp_path: Path) -> Path:
    """A Fast-Agent config of this test's own, so no file of the user's is read."""
    path = tmp_path / "fast-agent.yaml"
    path.write_text("default_model: passthrough\nmcp:\n  servers: {}\n")
    return path


@pytest.mark.slow
async def test_a_fast_agent_agent_answers_with_text_and_json(
    fast_agent_config: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    executor, picker = executor_for(fast_agent(), config_path=fast_agent_config)
    echoed = await run(executor, request(task("summarize this, please")))
    assert (echoed.stdout, echoed.json) == ("summarize this, please", None)
    fixed = await run(executor, request(task('***FIXED_RESPONSE {"a": 1}', output="json")))
    assert fixed.json == {"a": 1}
    assert picker.released == [True, True]
    # Each task gets a fresh run: the fixed response does not leak into the next task.
    again = await run(executor, request(task("plain again")))
    assert again.stdout == "plain again"
    assert capfd.readouterr().out == ""  # stdout is where `aop stdio` speaks MCP


@pytest.mark.slow
async def test_a_fast_agent_agent_without_its_server_or_key_is_unavailable(
    fast_agent_config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    adapter = FastAgentAdapter(config_path=fast_agent_config)
    with anyio.fail_after(WAIT):
        await adapter.probe(fast_agent())
        for agent in (fast_agent(servers=["nowhere"]), fast_agent(model="sonnet")):
            with pytest.raises(AgentFailure) as probed:
                await adapter.probe(agent)
            assert probed.value.kind is FailureKind.UNAVAILABLE
        with pytest.raises(AgentFailure) as invoked:
            await adapter.invoke(fast_agent(servers=["nowhere"]), "hello")
    assert invoked.value.kind is FailureKind.UNAVAILABLE
    assert "nowhere" in invoked.value.message
