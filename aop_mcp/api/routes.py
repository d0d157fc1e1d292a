"""The route table of the REST API: every operation, served and documented from here alone.

Paths are relative to where the API is mounted (`/api/v1`). A literal segment comes before a
parameter in the same place (`/workflows/validate` before `/workflows/{name}`).
"""

from __future__ import annotations

from aop_mcp.api import schemas as s
from aop_mcp.api.handlers import dead_letters, docs, events, runs, workflows
from aop_mcp.api.operations import Body, Operation, Reply
from aop_mcp.workflow import WorkflowDocument

_DOCUMENT = Body(WorkflowDocument, kind="document", required=True)
_RUN = Reply(200, "the run", s.RunView)

OPERATIONS: tuple[Operation, ...] = (
    Operation(
        "GET",
        "/workflows",
        workflows.list_workflows,
        operation_id="listWorkflows",
        summary="List workflows (the latest version of each)",
        tag="workflows",
        replies=(Reply(200, "the workflows", s.WorkflowList),),
    ),
    Operation(
        "POST",
        "/workflows",
        workflows.define_workflow,
        operation_id="defineWorkflow",
        summary="Define a workflow: a changed document becomes its next version",
        tag="workflows",
        replies=(
            Reply(201, "a new version was stored", s.WorkflowDefined),
            Reply(200, "identical to the latest version: nothing stored", s.WorkflowDefined),
        ),
        body=_DOCUMENT,
        errors=(400, 413, 415, 422),
    ),
    Operation(
        "POST",
        "/workflows/validate",
        workflows.validate_workflow,
        operation_id="validateWorkflow",
        summary="Check a workflow document without storing it",
        tag="workflows",
        replies=(Reply(200, "the document is valid", s.WorkflowValid),),
        body=_DOCUMENT,
        errors=(400, 413, 415, 422),
    ),
    Operation(
        "GET",
        "/workflows/{name}",
        workflows.get_workflow,
        operation_id="getWorkflow",
        summary="Read a workflow (its latest version, or `version`)",
        tag="workflows",
        replies=(Reply(200, "the workflow version", s.WorkflowView),),
        query=s.GetWorkflowQuery,
        errors=(404,),
    ),
    Operation(
        "POST",
        "/workflows/{name}/runs",
        runs.start_run,
        operation_id="startRun",
        summary="Start a run of a workflow",
        tag="runs",
        replies=(
            Reply(201, "the run was started", s.RunView),
            Reply(200, "the idempotency key was used before: its run", s.RunView),
        ),
        body=Body(s.StartRunRequest),
        errors=(400, 404, 413, 415, 422),
    ),
    Operation(
        "GET",
        "/runs",
        runs.list_runs,
        operation_id="listRuns",
        summary="List runs, newest first, a page at a time",
        tag="runs",
        replies=(Reply(200, "a page of runs", s.RunPage),),
        query=s.ListRunsQuery,
    ),
    Operation(
        "GET",
        "/runs/{run_id}",
        runs.get_run,
        operation_id="getRun",
        summary="Read a run and its tasks",
        tag="runs",
        replies=(Reply(200, "the run and its tasks", s.RunDetailView),),
        errors=(404,),
    ),
    Operation(
        "POST",
        "/runs/{run_id}/cancel",
        runs.cancel_run,
        operation_id="cancelRun",
        summary="Cancel a run that has not finished",
        tag="runs",
        replies=(_RUN,),
        errors=(404, 409),
    ),
    Operation(
        "POST",
        "/runs/{run_id}/retry",
        runs.retry_run,
        operation_id="retryRun",
        summary="Run the failed and cancelled tasks of a finished run again",
        tag="runs",
        replies=(_RUN,),
        errors=(404, 409),
    ),
    Operation(
        "GET",
        "/runs/{run_id}/tasks",
        runs.list_tasks,
        operation_id="listTasks",
        summary="List the tasks of a run",
        tag="runs",
        replies=(Reply(200, "the run's tasks, in order", s.TaskRunList),),
        errors=(404,),
    ),
    Operation(
        "GET",
        "/runs/{run_id}/tasks/{task_id}",
        runs.get_task,
        operation_id="getTask",
        summary="Read a task of a run with its attempts",
        tag="runs",
        replies=(Reply(200, "the task and its attempts", s.TaskDetailView),),
        errors=(404,),
    ),
    Operation(
        "GET",
        "/runs/{run_id}/tasks/{task_id}/logs",
        runs.get_task_logs,
        operation_id="getTaskLogs",
        summary="Read what an attempt of a task printed (the latest by default)",
        tag="runs",
        replies=(Reply(200, "the attempt's stdout and stderr", s.TaskLogsView),),
        query=s.LogsQuery,
        errors=(404,),
    ),
    Operation(
        "GET",
        "/dead-letters",
        dead_letters.list_dead_letters,
        operation_id="listDeadLetters",
        summary="List the dead-letter queue, oldest first",
        tag="dead-letters",
        replies=(Reply(200, "the dead letters", s.DeadLetterList),),
        query=s.DeadLettersQuery,
    ),
    Operation(
        "POST",
        "/dead-letters/{dead_letter_id}/replay",
        dead_letters.replay_dead_letter,
        operation_id="replayDeadLetter",
        summary="Run a dead-lettered task again in its run",
        tag="dead-letters",
        replies=(Reply(200, "the run, running again", s.RunView),),
        errors=(404, 409),
    ),
    Operation(
        "GET",
        "/events",
        events.stream_events,
        operation_id="streamEvents",
        summary="Stream events as server-sent events, resuming after `Last-Event-ID`",
        tag="events",
        replies=(
            Reply(
                200,
                "a text/event-stream; each message has `id` (the seq), `event` (the type) "
                "and `data` (an Event as JSON)",
                s.EventView,
                media_type="text/event-stream",
            ),
        ),
        query=s.EventsQuery,
        errors=(404,),
        headers={events.LAST_EVENT_ID: "the last seq seen"},
    ),
    Operation(
        "GET",
        "/openapi.json",
        docs.openapi_document,
        operation_id="getOpenApi",
        summary="This document",
        tag="meta",
        replies=(Reply(200, "the OpenAPI 3.1 document"),),
        public=True,
    ),
)
