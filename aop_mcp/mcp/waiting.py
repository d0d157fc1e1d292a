"""Following a run until it ends, turning its task events into MCP progress notifications."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import anyio

from aop_mcp.models import Event

if TYPE_CHECKING:
    from aop_mcp.hub import Hub
    from aop_mcp.services.runs import RunDetail

#: `ctx.report_progress(progress, total, message)`.
ReportProgress = Callable[[float, float | None, str | None], Awaitable[None]]


class _Progress:
    """Reports finished tasks out of all tasks; MCP requires progress to only ever increase."""

    def __init__(self, report: ReportProgress) -> None:
        self._report = report
        self._sent: float = -1
        self._seen: set[str] = set()

    async def show(self, detail: RunDetail) -> None:
        finished = [t for t in detail.tasks if t.status.finished]
        fresh = [t for t in finished if t.task_id not in self._seen]
        self._seen.update(t.task_id for t in finished)
        if len(finished) <= self._sent:
            return
        self._sent = len(finished)
        news = ", ".join(f"{t.task_id} {t.status}" for t in fresh)
        count = f"{len(finished)} of {len(detail.tasks)} tasks finished"
        message = f"run {detail.run.status}: {count}" + (f" ({news})" if news else "")
        await self._report(len(finished), len(detail.tasks), message)


async def _pump(hub: Hub, run_id: str, queue: asyncio.Queue[Event], progress: _Progress) -> None:
    """On each burst of events, read the run once and report what finished."""
    while True:
        await queue.get()
        while not queue.empty():
            queue.get_nowait()
        await progress.show(await hub.runs.get(run_id))


async def follow_run(
    hub: Hub,
    run_id: str,
    timeout: float,  # noqa: ASYNC109 - reaching it is an answer, not an error
    report: ReportProgress,
) -> RunDetail:
    """Wait up to `timeout` seconds for the run to end, reporting progress as tasks finish.

    Subscribes before reading the run, so an event between the read and the wait is not
    missed. Returns the run as it is when it ended or when the time was up.
    """
    progress = _Progress(report)
    async with hub.bus.subscribe(run_id) as queue:
        detail = await hub.runs.get(run_id)
        await progress.show(detail)
        if detail.run.status.finished:
            return detail
        async with anyio.create_task_group() as group:
            group.start_soon(_pump, hub, run_id, queue, progress)
            await hub.runs.wait(run_id, timeout)
            group.cancel_scope.cancel()
    detail = await hub.runs.get(run_id)
    await progress.show(detail)
    return detail
