"""Run pages: the filtered, paginated list; one run live; cancel and retry."""

from __future__ import annotations

import time
from typing import Any

from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import Response

from aop_mcp.models import Attempt, Run, RunStatus, TaskStatus
from aop_mcp.services.runs import RunDetail
from aop_mcp.web.auth import WebContext, WebRefusal, go_to
from aop_mcp.web.render import render, render_text
from aop_mcp.web.svg_dag import dag_nodes, dag_svg

PAGE_SIZE = 25
MAX_PAGE_SIZE = 200


async def run_list(request: Request, ctx: WebContext) -> Response:
    """Runs, newest first, filtered by workflow and status, a page at a time (keyset)."""
    query = request.query_params
    workflow = query.get("workflow") or None
    status = _status(query.get("status"))
    limit = _limit(query.get("limit"))
    cursor = query.get("cursor") or None
    page = await ctx.hub.runs.page(
        workflow=workflow,
        statuses=[status] if status else None,
        limit=limit,
        cursor=cursor,
    )
    values = ctx.page(
        nav="runs",
        runs=page.runs,
        next_cursor=page.next_cursor,
        first_page=cursor is None,
        workflow=workflow or "",
        status=str(status) if status else "",
        statuses=[str(s) for s in RunStatus],
        limit=limit,
    )
    if request.headers.get("hx-request") and request.headers.get("hx-target") == "run-rows":
        return render("_run_rows.html", values)
    values["workflows"] = [stored.name for stored in await ctx.hub.workflows.list()]
    return render("runs.html", values)


def _status(raw: str | None) -> RunStatus | None:
    if not raw:
        return None
    try:
        return RunStatus(raw)
    except ValueError:
        choices = ", ".join(RunStatus)
        raise WebRefusal(400, f"status {raw!r} is not a run status; choose {choices}") from None


def _limit(raw: str | None) -> int:
    if not raw:
        return PAGE_SIZE
    try:
        limit = int(raw)
    except ValueError:
        limit = 0
    if not 1 <= limit <= MAX_PAGE_SIZE:
        raise WebRefusal(400, f"limit must be a number from 1 to {MAX_PAGE_SIZE}, got {raw!r}")
    return limit


async def run_page(request: Request, ctx: WebContext) -> Response:
    """One run: its graph coloured by task status (live), tasks, attempts, actions."""
    run_id = request.path_params["run_id"]
    view = await live_view(ctx, run_id)
    # A box of the graph links here with `?task=`: the page opens with that task's panel.
    chosen = request.query_params.get("task")
    task = await ctx.hub.runs.task(run_id, chosen) if chosen else None
    return render(
        "run.html",
        ctx.page(
            nav="runs",
            task=task.task if task else None,
            attempts=task.attempts if task else [],
            **view,
        ),
    )


async def live_view(ctx: WebContext, run_id: str) -> dict[str, Any]:
    """What the live parts of a run page show; the SSE stream sends the same, re-rendered."""
    detail = await ctx.hub.runs.get(run_id)
    # The stream re-renders on every event: the engine's parsed copy, not a read and a parse.
    document = await ctx.hub.runs.document(detail.run)
    attempts = await ctx.hub.runs.attempts(run_id)
    return {
        "run": detail.run,
        "tasks": detail.tasks,
        "counts": _counts(detail),
        "dag": Markup(
            dag_svg(
                dag_nodes(document),
                statuses={t.task_id: str(t.status) for t in detail.tasks},
                link=lambda task_id: f"/runs/{run_id}?task={task_id}#task-panel",
            )
        ),
        "timeline": timeline(detail.run, attempts),
        "retryable": detail.run.status in (RunStatus.FAILED, RunStatus.CANCELLED),
    }


def live_fragments(ctx: WebContext, view: dict[str, Any]) -> dict[str, str]:
    """The run page's live parts as HTML, by the SSE event name that carries each."""
    values = ctx.page(**view)
    return {
        "summary": render_text("_run_summary.html", values),
        "dag": render_text("_run_dag.html", values),
        "tasks": render_text("_run_tasks.html", values),
        "timeline": render_text("_run_timeline.html", values),
    }


def _counts(detail: RunDetail) -> list[tuple[str, int]]:
    counts: dict[str, int] = {}
    for task in detail.tasks:
        counts[str(task.status)] = counts.get(str(task.status), 0) + 1
    return [(str(status), counts[str(status)]) for status in TaskStatus if str(status) in counts]


def timeline(run: Run, attempts: list[Attempt]) -> dict[str, Any]:
    """Attempts as bars on the run's time axis: offset and width in percent of the span."""
    if not attempts:
        return {"rows": [], "span": 0.0}
    start = min(a.started_at for a in attempts)
    ends = [a.finished_at for a in attempts if a.finished_at is not None]
    end = max([*ends, run.finished_at or 0.0, *(a.started_at for a in attempts)])
    if any(a.finished_at is None for a in attempts):
        end = max(end, _now(run))
    span = max(end - start, 1e-3)
    rows = []
    for attempt in attempts:
        finish = attempt.finished_at if attempt.finished_at is not None else end
        rows.append(
            {
                "attempt": attempt,
                "offset": round((attempt.started_at - start) / span * 100, 2),
                "width": round(max((finish - attempt.started_at) / span * 100, 0.6), 2),
                "agent": attempt.output.agent if attempt.output is not None else None,
            }
        )
    return {"rows": rows, "span": span}


def _now(run: Run) -> float:
    return run.finished_at or time.time()


async def task_panel(request: Request, ctx: WebContext) -> Response:
    """One task's output, error and attempts (the panel beside the graph)."""
    detail = await ctx.hub.runs.task(request.path_params["run_id"], request.path_params["task_id"])
    return render("_task_panel.html", ctx.page(task=detail.task, attempts=detail.attempts))


async def cancel_run(request: Request, ctx: WebContext) -> Response:
    """Cancel the run; back to its page."""
    run = await ctx.hub.runs.cancel(request.path_params["run_id"])
    return go_to(request, f"/runs/{run.id}")


async def retry_run(request: Request, ctx: WebContext) -> Response:
    """Run the failed and cancelled tasks of a finished run again; back to its page."""
    run = await ctx.hub.runs.retry(request.path_params["run_id"])
    return go_to(request, f"/runs/{run.id}")
