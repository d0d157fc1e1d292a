"""The `mcp` agent adapter: an agent is a remote MCP server, and one of its tools does the work.

An agent's config names how to reach the server and which tool to call:

- `url` (streamable HTTP, with optional `headers`) or `command` (the argument list of a
  program started over stdio, with optional `env`);
- `tool`, and `input_argument` (default `input`): the task's message becomes
  `{input_argument: message}`.

Each `invoke` and `probe` opens its own connection and closes it before returning: simple,
nothing to go stale between tasks, and an HTTP connection costs milliseconds next to an
agent's work. A stdio agent pays a process start per task; pooling is left for when it
matters. Errors of the MCP SDK and of httpx2 stop here as AgentFailure.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import httpx2
from mcp import Client, MCPError, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp_types import CONNECTION_CLOSED, CallToolResult, TextContent

from aop_mcp.models import Agent, FailureKind
from aop_mcp.ports.agent import AgentFailure, AgentReply

_UNREACHABLE = (OSError, httpx2.HTTPError)  # the server could not be reached or answered badly
# The SDK's own defaults: a server may keep a response stream quiet while its tool works.
_HTTP_TIMEOUT = httpx2.Timeout(30.0, read=300.0)


class McpAgentAdapter:
    """Sends a task's message to an agent's MCP tool and returns what the tool answered."""

    kind = "mcp"

    async def invoke(self, agent: Agent, message: str) -> AgentReply:
        """Call the agent's tool with the message; its error result becomes AGENT_ERROR."""
        tool = _tool(agent)
        argument = str(agent.config.get("input_argument") or "input")
        try:
            async with _connected(agent) as client:
                result = await client.call_tool(tool, {argument: message})
        except Exception as exc:
            raise _failure(agent, f"calling tool {tool!r}", exc) from exc
        return _reply(tool, result)

    async def probe(self, agent: Agent) -> None:
        """Connect and list the tools: the agent's tool must be among them."""
        tool = _tool(agent)
        try:
            async with _connected(agent) as client:
                names = await _tool_names(client)
        except Exception as exc:
            raise _failure(agent, "listing tools", exc) from exc
        if tool not in names:
            listed = ", ".join(sorted(names)) or "none"
            raise AgentFailure(
                FailureKind.AGENT_ERROR,
                f"the MCP server has no tool {tool!r}; it lists: {listed}",
            )


def _tool(agent: Agent) -> str:
    tool = agent.config.get("tool")
    if not isinstance(tool, str) or not tool:
        raise AgentFailure(FailureKind.AGENT_ERROR, "the agent's config names no `tool`")
    return tool


@asynccontextmanager
async def _connected(agent: Agent) -> AsyncIterator[Client]:
    """A client connected to the agent's server, closed when the block ends."""
    config = agent.config
    async with AsyncExitStack() as stack:
        if config.get("url"):
            http = httpx2.AsyncClient(
                headers=_strings(config.get("headers")), timeout=_HTTP_TIMEOUT
            )
            await stack.enter_async_context(http)
            server: Any = streamable_http_client(str(config["url"]), http_client=http)
        elif config.get("command"):
            server = _stdio_parameters(config)
        else:
            raise AgentFailure(
                FailureKind.AGENT_ERROR,
                "the agent's config has neither `url` nor `command`",
            )
        yield await stack.enter_async_context(Client(server))


def _stdio_parameters(config: Mapping[str, Any]) -> StdioServerParameters:
    command = config["command"]
    argv = [str(part) for part in command] if isinstance(command, list) else [str(command)]
    return StdioServerParameters(
        command=argv[0], args=argv[1:], env=_strings(config.get("env")) or None
    )


def _strings(value: Any) -> dict[str, str]:
    return {str(k): str(v) for k, v in (value or {}).items()}


async def _tool_names(client: Client) -> set[str]:
    names: set[str] = set()
    cursor: str | None = None
    for _ in range(100):  # a server whose pages never end cannot hang a probe
        page = await client.list_tools(cursor=cursor)
        names.update(tool.name for tool in page.tools)
        cursor = page.next_cursor
        if cursor is None:
            break
    return names


def _reply(tool: str, result: CallToolResult) -> AgentReply:
    text = "\n".join(block.text for block in result.content if isinstance(block, TextContent))
    if result.is_error:
        detail = text or "no message"
        raise AgentFailure(FailureKind.AGENT_ERROR, f"tool {tool!r} reported an error: {detail}")
    return AgentReply(text=text, json=result.structured_content)


def _failure(agent: Agent, doing: str, exc: Exception) -> AgentFailure:
    """What went wrong, as an AgentFailure: unreachable servers are UNAVAILABLE."""
    if isinstance(exc, AgentFailure):
        return exc
    leaves = _leaves(exc)
    kind = (
        FailureKind.UNAVAILABLE
        if any(_unreachable(leaf) for leaf in leaves)
        else FailureKind.AGENT_ERROR
    )
    detail = "; ".join(_describe(leaf) for leaf in leaves)
    where = agent.config.get("url") or agent.config.get("command")
    return AgentFailure(kind, f"{doing} at {where} failed: {detail}")


def _unreachable(exc: BaseException) -> bool:
    if isinstance(exc, MCPError):
        return exc.code == CONNECTION_CLOSED
    return isinstance(exc, _UNREACHABLE)


def _leaves(exc: BaseException) -> list[BaseException]:
    """The exceptions inside the SDK's task-group wrappers, or `exc` itself."""
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for inner in exc.exceptions for leaf in _leaves(inner)]
    return [exc]


def _describe(exc: BaseException) -> str:
    message = str(exc)
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__
