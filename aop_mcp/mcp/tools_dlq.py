"""Dead-letter tools: tasks that failed for good, and running them again."""

from __future__ import annotations

from typing import Annotated

from mcp.server.mcpserver import MCPServer
from mcp_types import ToolAnnotations
from pydantic import Field

from aop_mcp.mcp.auth import require_writer
from aop_mcp.mcp.errors import tool_errors
from aop_mcp.mcp.holder import HubHolder
from aop_mcp.mcp.views import DeadLetterView, RunView, View, dead_letter_view, run_view


class DeadLetterListView(View):
    dead_letters: list[DeadLetterView] = Field(description="oldest first")
    next_cursor: str | None = Field(
        default=None, description="pass as cursor for the next page; null: this is the last"
    )


def register(server: MCPServer, hubs: HubHolder) -> None:
    """Add the dead-letter tools to `server`."""

    @server.tool(annotations=ToolAnnotations(read_only_hint=True, open_world_hint=False))
    @tool_errors
    async def dlq_list(
        run_id: Annotated[str | None, Field(description="only dead letters of this run")] = None,
        include_replayed: Annotated[
            bool, Field(description="also list dead letters already replayed")
        ] = False,
        limit: Annotated[int, Field(description="dead letters per page", ge=1, le=200)] = 50,
        cursor: Annotated[
            str | None, Field(description="next_cursor of the previous page; omit for the first")
        ] = None,
    ) -> DeadLetterListView:
        """The dead-letter queue: task runs that failed for good, with their last error.

        A task lands here when its retries are spent (and it has no fallback); its run is
        failed. Fix the cause (the error and task_logs tell it), then dlq_replay the id.
        Returns one page, oldest first; when `next_cursor` is not null, call again with it
        as `cursor` for the next page.
        """
        hub = await hubs.wait_hub()
        page = await hub.dead_letters.page(
            run_id=run_id, include_replayed=include_replayed, limit=limit, cursor=cursor
        )
        return DeadLetterListView(
            dead_letters=[dead_letter_view(d) for d in page.letters], next_cursor=page.next_cursor
        )

    @server.tool(annotations=ToolAnnotations(open_world_hint=False))
    @tool_errors
    async def dlq_replay(
        dead_letter_id: Annotated[str, Field(description="the dead letter's id, from dlq_list")],
    ) -> RunView:
        """Run a dead-lettered task again in its run, with a fresh retry budget.

        The run continues from there (tasks waiting on it run too). Returns the run: follow
        it with run_wait. Replaying the same dead letter twice is an error.
        """
        require_writer("replay a dead letter")
        hub = await hubs.wait_hub()
        return run_view(await hub.dead_letters.replay(dead_letter_id))
