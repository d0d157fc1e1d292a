"""Executors: the adapters that run one attempt of a task (`run.executor`)."""

from __future__ import annotations

from collections.abc import Mapping

from aop_mcp.executors.agent import AgentExecutor
from aop_mcp.executors.local import LocalExecutor
from aop_mcp.executors.python_callable import PythonExecutor
from aop_mcp.ports.agent import AgentAdapter, AgentPicker
from aop_mcp.ports.executor import Executor

__all__ = [
    "AgentExecutor",
    "LocalExecutor",
    "PythonExecutor",
    "default_agent_adapters",
    "default_executors",
]


def default_executors(
    *,
    base_env: Mapping[str, str] | None = None,
    sandbox: bool = False,
    picker: AgentPicker | None = None,
    agent_adapters: Mapping[str, AgentAdapter] | None = None,
) -> dict[str, Executor]:
    """The executors every engine has, by name: `local` and `python`, and `agent` when a
    `picker` (the Agent Manager) is given, with `agent_adapters` or the default ones."""
    executors: dict[str, Executor] = {
        "local": LocalExecutor(base_env=base_env, sandbox=sandbox),
        "python": PythonExecutor(),
    }
    if picker is not None:
        adapters = agent_adapters if agent_adapters is not None else default_agent_adapters()
        executors["agent"] = AgentExecutor(picker, adapters)
    return executors


def default_agent_adapters() -> dict[str, AgentAdapter]:
    """The adapters of the agent kinds the hub pushes tasks to: `mcp` and `fast-agent`."""
    # Imported here: the MCP client is not needed by an engine without agents.
    from aop_mcp.agents.fast_agent_adapter import FastAgentAdapter
    from aop_mcp.agents.mcp_remote import McpAgentAdapter

    return {"mcp": McpAgentAdapter(), "fast-agent": FastAgentAdapter()}
