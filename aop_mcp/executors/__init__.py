"""Executors: the adapters that run one attempt of a task (`run.executor`)."""

from __future__ import annotations

from collections.abc import Mapping

from aop_mcp.executors.local import LocalExecutor
from aop_mcp.executors.python_callable import PythonExecutor
from aop_mcp.ports.executor import Executor

__all__ = ["LocalExecutor", "PythonExecutor", "default_executors"]


def default_executors(
    *, base_env: Mapping[str, str] | None = None, sandbox: bool = False
) -> dict[str, Executor]:
    """The executors every engine has, by name: `local` and `python`."""
    return {
        "local": LocalExecutor(base_env=base_env, sandbox=sandbox),
        "python": PythonExecutor(),
    }
