"""Executors: the adapters that run one attempt of a task (`run.executor`)."""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aop_mcp.executors.agent import AgentExecutor
from aop_mcp.executors.dagger_executor import DaggerExecutor
from aop_mcp.executors.local import LocalExecutor
from aop_mcp.executors.python_callable import PythonExecutor
from aop_mcp.models import Agent
from aop_mcp.ports.agent import AgentAdapter, AgentPicker, AgentReply
from aop_mcp.ports.executor import Executor, SecretSource

if TYPE_CHECKING:
    from aop_mcp.agents.pull import PullQueue

__all__ = [
    "AgentExecutor",
    "DaggerExecutor",
    "LazyAdapter",
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
    pull: PullQueue | None = None,
    secrets: SecretSource | None = None,
    dagger_env: Mapping[str, str] | None = None,
) -> dict[str, Executor]:
    """The executors every engine has, by name: `local`, `python` and `dagger` (on the
    engine `dagger_env` leads to, with `secrets` for its tasks' secrets), and `agent` when
    a `picker` (the Agent Manager) is given, with `agent_adapters` or the default ones, and
    `pull` for the tasks of pull agents."""
    executors: dict[str, Executor] = {
        "local": LocalExecutor(base_env=base_env, sandbox=sandbox),
        "python": PythonExecutor(),
        "dagger": DaggerExecutor(dagger_env or {}, secrets),
    }
    if picker is not None:
        adapters = agent_adapters if agent_adapters is not None else default_agent_adapters()
        executors["agent"] = AgentExecutor(picker, adapters, pull=pull)
    return executors


def default_agent_adapters(fast_agent_config: Path | None = None) -> dict[str, AgentAdapter]:
    """The adapters of the agent kinds the hub pushes tasks to: `mcp` and `fast-agent`.

    Each is built on first use: the MCP client and Fast-Agent take a second or more to
    import, which a server or `aop run` with no agent task should not pay at start.
    """
    return {
        "mcp": LazyAdapter("mcp", "aop_mcp.agents.mcp_remote", "McpAgentAdapter"),
        "fast-agent": LazyAdapter(
            "fast-agent",
            "aop_mcp.agents.fast_agent_adapter",
            "FastAgentAdapter",
            config_path=fast_agent_config,
        ),
    }


class LazyAdapter:
    """An AgentAdapter whose module is imported, in a thread, the first time it is used."""

    def __init__(self, kind: str, module: str, name: str, **options: Any) -> None:
        self.kind = kind
        self._where = (module, name)
        self._options = options  # given to the adapter's constructor
        self._adapter: AgentAdapter | None = None

    async def invoke(self, agent: Agent, message: str) -> AgentReply:
        """The real adapter's `invoke`."""
        return await (await self._real()).invoke(agent, message)

    async def probe(self, agent: Agent) -> None:
        """The real adapter's `probe`."""
        await (await self._real()).probe(agent)

    async def _real(self) -> AgentAdapter:
        if self._adapter is None:
            module, name = self._where
            loaded = await asyncio.to_thread(importlib.import_module, module)
            self._adapter = getattr(loaded, name)(**self._options)
        return self._adapter
