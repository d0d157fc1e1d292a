"""The MCP door's one error mapping: an `AopError` becomes a tool error the model can act on.

A tool raises the service's `AopError`; `tool_errors` turns it into the SDK's `ToolError`,
which the SDK returns as a `CallToolResult` with `is_error=True` (the session carries on).
Resources map the same errors to `ResourceError`s with `resource_errors`.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import ParamSpec, TypeVar

from mcp.server.mcpserver.exceptions import ResourceError, ResourceNotFoundError, ToolError

from aop_mcp.errors import (
    AgentExists,
    AgentNotFound,
    AopError,
    Conflict,
    InvalidAgent,
    InvalidInputs,
    InvalidWorkflow,
    NotFound,
    Problem,
    SecretNotFound,
)

P = ParamSpec("P")
R = TypeVar("R")

#: What the model should do next, by kind of error; the error's own message says what failed.
_HINTS: tuple[tuple[type[AopError], str], ...] = (
    (InvalidWorkflow, "Fix every problem listed, call workflow_validate, then define it again."),
    (InvalidInputs, "Call workflow_get to see the declared inputs, then start the run again."),
    (InvalidAgent, "Fix every field listed, then call the agent tool again."),
    (AgentNotFound, "Call agent_list to see the names of the registered agents."),
    (SecretNotFound, "Call secret_list to see the names of the stored secrets."),
    (AgentExists, "Call agent_get to see it; change it with agent_update instead."),
    (
        NotFound,
        "Check the id or name: the list tools (workflow_list, run_list, dlq_list) show them.",
    ),
    (Conflict, "Call run_status to see the run's current state before trying again."),
)


_KINDS = {InvalidWorkflow: "workflow", InvalidInputs: "inputs", InvalidAgent: "agent"}


def problem_lines(problems: list[Problem]) -> list[str]:
    """One line per problem, naming the task and the field at fault."""
    return [f"- {problem}" for problem in problems]


def error_message(err: AopError) -> str:
    """The text a model reads: what failed, every problem, and what to do next."""
    lines = [str(err)]
    if isinstance(err, InvalidWorkflow | InvalidInputs | InvalidAgent) and err.problems:
        kind = _KINDS[type(err)]
        lines = [f"invalid {kind}: {len(err.problems)} problem(s)", *problem_lines(err.problems)]
    hint = next((text for kind, text in _HINTS if isinstance(err, kind)), None)
    if err.status == 503:
        hint = "The server is starting or shutting down; retry the same call in a few seconds."
    if hint:
        lines.append(hint)
    return "\n".join(lines)


def tool_errors[**P, R](fn: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
    """Wrap a tool so an `AopError` becomes an `is_error=True` result instead of a crash."""

    @functools.wraps(fn)  # keeps the signature: the SDK builds the input schema from it
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return await fn(*args, **kwargs)
        except AopError as err:
            raise ToolError(error_message(err)) from err

    return wrapper


def resource_errors[**P, R](fn: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
    """Wrap a resource so a missing run or workflow is a not-found error, not a crash."""

    @functools.wraps(fn)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return await fn(*args, **kwargs)
        except NotFound as err:
            raise ResourceNotFoundError(str(err)) from err
        except AopError as err:
            raise ResourceError(error_message(err)) from err

    return wrapper
