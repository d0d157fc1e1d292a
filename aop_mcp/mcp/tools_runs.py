"""Run tools: start, watch, list, cancel and retry runs."""

from __future__ import annotations

from typing import Annotated, Any

from mcp.server.mcpserver import Context, MCPServer
from mcp_types import ToolAnnotations
from pydantic import Field

from aop_mcp.mcp.auth import require_writer
from aop_mcp.mcp.errors import tool_errors
from aop_mcp.mcp.holder import HubHolder
from aop_mcp.mcp.views import RunDetailView, RunView, View, run_detail_view, run_view
from aop_mcp.mcp.waiting import follow_run
from aop_mcp.models import RunStatus

#: run_wait's default and longest wait, in seconds.
WAIT_DEFAULT = 30.0
WAIT_MAX = 300.0

READ_ONLY = ToolAnnotations(read_only_hint=True, open_world_hint=False)
RunId = Annotated[str, Field(description="the run's id, as run_start or run_list returned it")]


class RunListView(View):
    runs: list[RunView] = Field(description="newest first")
    next_cursor: str | None = Field(
        description="pass as `cursor` to get the next page; null when this is the last page"
    )


def register(server: MCPServer, hubs: HubHolder) -> None:
    """Add the run tools to `server`."""
    _register_start_and_watch(server, hubs)
    _register_list_and_control(server, hubs)


def _register_start_and_watch(server: MCPServer, hubs: HubHolder) -> None:
    @server.tool(annotations=ToolAnnotations(open_world_hint=False))
    @tool_errors
    async def run_start(
        workflow: Annotated[str, Field(description="the name of a defined workflow")],
        inputs: Annotated[
            dict[str, Any] | None,
            Field(description="run inputs by name, as the workflow declares them (workflow_get)"),
        ] = None,
        idempotency_key: Annotated[
            str | None,
            Field(description="any unique string: a second call with it returns the same run"),
        ] = None,
        version: Annotated[
            int | None, Field(description="workflow version to run; omit for the latest", ge=1)
        ] = None,
    ) -> RunView:
        """Start a run of a defined workflow and return at once with its id and status.

        The run goes on in the background: follow it with run_wait (blocks, with progress) or
        run_status (a snapshot). Pass an idempotency_key when a retry of this call must not
        start a second run. Errors: an unknown workflow (define it first with workflow_define)
        or inputs that do not match the declared ones (the message names each input).
        """
        require_writer("start a run")
        hub = await hubs.wait_hub()
        run = await hub.runs.start(
            workflow, inputs or {}, idempotency_key=idempotency_key, version=version
        )
        return run_view(run)

    @server.tool(annotations=READ_ONLY)
    @tool_errors
    async def run_status(run_id: RunId) -> RunDetailView:
        """A snapshot of a run and each of its task runs, without waiting.

        Each task run shows its status, attempts, timings, a short error and a summary of its
        output; task_get and task_logs give the full output of a task.
        """
        hub = await hubs.wait_hub()
        detail = await hub.runs.get(run_id)
        return run_detail_view(detail.run, detail.tasks)

    @server.tool(annotations=READ_ONLY)
    @tool_errors
    async def run_wait(
        run_id: RunId,
        ctx: Context,
        timeout_seconds: Annotated[
            float,
            Field(
                description="how long to wait at most (default 30, at most 300)", ge=0, le=WAIT_MAX
            ),
        ] = WAIT_DEFAULT,
    ) -> RunDetailView:
        """Wait for a run to finish, reporting progress as its tasks finish.

        Returns the run with its task runs when it ended, or as it is when the timeout
        passed: `finished` tells which. Not finishing in time is not an error: call run_wait
        again to keep waiting, or run_cancel to stop the run. A failed run names its failed
        tasks; task_logs shows what they printed.
        """
        hub = await hubs.wait_hub()
        detail = await follow_run(hub, run_id, timeout_seconds, ctx.report_progress)
        return run_detail_view(detail.run, detail.tasks)


def _register_list_and_control(server: MCPServer, hubs: HubHolder) -> None:
    @server.tool(annotations=READ_ONLY)
    @tool_errors
    async def run_list(
        workflow: Annotated[str | None, Field(description="only runs of this workflow")] = None,
        status: Annotated[
            list[RunStatus] | None, Field(description="only runs in one of these statuses")
        ] = None,
        limit: Annotated[int, Field(description="runs per page", ge=1, le=200)] = 20,
        cursor: Annotated[
            str | None, Field(description="next_cursor of the previous page; omit for the first")
        ] = None,
    ) -> RunListView:
        """List runs, newest first, optionally of one workflow or in some statuses.

        Returns one page; when `next_cursor` is not null, call again with it as `cursor` for
        the next page.
        """
        hub = await hubs.wait_hub()
        page = await hub.runs.page(workflow=workflow, statuses=status, limit=limit, cursor=cursor)
        return RunListView(runs=[run_view(r) for r in page.runs], next_cursor=page.next_cursor)

    @server.tool(annotations=ToolAnnotations(destructive_hint=True, open_world_hint=False))
    @tool_errors
    async def run_cancel(run_id: RunId) -> RunView:
        """Cancel a run that has not finished: running tasks are stopped, the rest never start.

        Returns the run; its status becomes `cancelled` once the engine has stopped it (call
        run_wait to see that). Cancelling a finished run is an error that says its status.
        """
        require_writer("cancel a run")
        hub = await hubs.wait_hub()
        return run_view(await hub.runs.cancel(run_id))

    @server.tool(annotations=ToolAnnotations(open_world_hint=False))
    @tool_errors
    async def run_retry(run_id: RunId) -> RunView:
        """Run the failed and cancelled tasks of a finished run again, in the same run.

        Each gets a fresh retry budget, and tasks skipped because of them run too; tasks that
        succeeded are kept. The run is `running` again: follow it with run_wait. Errors: the
        run is still running (wait or cancel first) or it succeeded (nothing to retry).
        """
        require_writer("retry a run")
        hub = await hubs.wait_hub()
        return run_view(await hub.runs.retry(run_id))
