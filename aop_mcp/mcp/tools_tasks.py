"""Task tools: a task run with its attempts, the task runs of a run, and an attempt's logs."""

from __future__ import annotations

from typing import Annotated

from mcp.server.mcpserver import MCPServer
from mcp_types import ToolAnnotations
from pydantic import Field

from aop_mcp.errors import AttemptNotFound
from aop_mcp.mcp.errors import tool_errors
from aop_mcp.mcp.holder import HubHolder
from aop_mcp.mcp.views import (
    LogsView,
    TaskDetailView,
    TaskRunView,
    View,
    logs_view,
    task_detail_view,
    task_run_view,
)
from aop_mcp.models import TaskStatus
from aop_mcp.services.task_logs import task_logs as task_logs_of

READ_ONLY = ToolAnnotations(read_only_hint=True, open_world_hint=False)
RunId = Annotated[str, Field(description="the run's id")]
TaskId = Annotated[str, Field(description="the task's id, as the workflow document names it")]


class TaskListView(View):
    run_id: str
    tasks: list[TaskRunView] = Field(description="in graph order")


def register(server: MCPServer, hubs: HubHolder) -> None:
    """Add the task tools to `server`."""

    @server.tool(annotations=READ_ONLY)
    @tool_errors
    async def task_get(run_id: RunId, task_id: TaskId) -> TaskDetailView:
        """One task run in full: status, every attempt, its whole output and its error.

        Use it after run_status shows a task failed or to read a task's JSON output. For the
        stdout/stderr of one particular attempt, use task_logs.
        """
        hub = await hubs.wait_hub()
        detail = await hub.runs.task(run_id, task_id)
        return task_detail_view(detail.task, detail.attempts)

    @server.tool(annotations=READ_ONLY)
    @tool_errors
    async def task_list(
        run_id: RunId,
        status: Annotated[
            list[TaskStatus] | None, Field(description="only task runs in one of these statuses")
        ] = None,
    ) -> TaskListView:
        """The task runs of a run, optionally only those in some statuses (e.g. ["failed"])."""
        hub = await hubs.wait_hub()
        detail = await hub.runs.get(run_id)
        tasks = [t for t in detail.tasks if status is None or t.status in status]
        return TaskListView(run_id=run_id, tasks=[task_run_view(t) for t in tasks])

    @server.tool(annotations=READ_ONLY)
    @tool_errors
    async def task_logs(
        run_id: RunId,
        task_id: TaskId,
        attempt: Annotated[
            int | None, Field(description="attempt number (1, 2, ...); omit for the latest", ge=1)
        ] = None,
    ) -> LogsView:
        """What one attempt of a task printed: stdout, stderr and exit code.

        Each stream keeps at most `cap_bytes`; the *_truncated flags say when output was cut.
        Omit `attempt` for the latest; task_get lists every attempt with its number.
        """
        hub = await hubs.wait_hub()
        logs = await task_logs_of(hub.runs, run_id, task_id, attempt)
        if logs.attempt is None:
            raise AttemptNotFound(run_id, task_id, None, 0)
        return logs_view(logs.attempt, logs.attempts, hub.settings.output_cap)
