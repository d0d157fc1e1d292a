"""Handlers of runs: start, list, read, cancel, retry, and a run's tasks and their logs."""

from __future__ import annotations

from starlette.responses import Response

from aop_mcp.api import views
from aop_mcp.api.handlers.workflows import location
from aop_mcp.api.operations import Call, reply
from aop_mcp.services.task_logs import task_logs


async def start_run(call: Call) -> Response:
    """`POST /workflows/{name}/runs`: 201 with a new run; 200 with the run of a used key."""
    body = call.body
    run, created = await call.hub.runs.start_or_get(
        call.param("name"),
        body.inputs,
        idempotency_key=body.idempotency_key,
        version=body.version,
    )
    if not created:
        return reply(views.run(run))
    where = location(call, f"/runs/{run.id}")
    return reply(views.run(run), 201, {"Location": where})


async def list_runs(call: Call) -> Response:
    """`GET /runs`: newest first, filtered, one page at a time."""
    query = call.query
    page = await call.hub.runs.page(
        workflow=query.workflow,
        statuses=query.status or None,
        limit=query.limit,
        cursor=query.cursor,
    )
    return reply(views.run_page(page))


async def get_run(call: Call) -> Response:
    """`GET /runs/{run_id}`: a run and its tasks."""
    return reply(views.run_detail(await call.hub.runs.get(call.param("run_id"))))


async def cancel_run(call: Call) -> Response:
    """`POST /runs/{run_id}/cancel`."""
    return reply(views.run(await call.hub.runs.cancel(call.param("run_id"))))


async def retry_run(call: Call) -> Response:
    """`POST /runs/{run_id}/retry`: its failed and cancelled tasks run again."""
    return reply(views.run(await call.hub.runs.retry(call.param("run_id"))))


async def list_tasks(call: Call) -> Response:
    """`GET /runs/{run_id}/tasks`."""
    detail = await call.hub.runs.get(call.param("run_id"))
    return reply(views.task_runs(detail.tasks))


async def get_task(call: Call) -> Response:
    """`GET /runs/{run_id}/tasks/{task_id}`: a task with its attempts."""
    detail = await call.hub.runs.task(call.param("run_id"), call.param("task_id"))
    return reply(views.task_detail(detail))


async def get_task_logs(call: Call) -> Response:
    """`GET /runs/{run_id}/tasks/{task_id}/logs`: what an attempt printed."""
    logs = await task_logs(
        call.hub.runs, call.param("run_id"), call.param("task_id"), call.query.attempt
    )
    return reply(views.task_logs(logs))
