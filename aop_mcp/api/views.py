"""Records as the API shows them: the one set of converters from domain records to responses.

Every route serialises through these, so a run looks the same in every answer and in events.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from aop_mcp.agents.manager import AgentStatus
from aop_mcp.agents.spec import public_config
from aop_mcp.api import schemas as s
from aop_mcp.models import (
    AgentVersion,
    Attempt,
    DeadLetter,
    Event,
    Run,
    TaskError,
    TaskOutput,
    TaskRun,
    WorkflowVersion,
)
from aop_mcp.security.secrets import SecretInfo
from aop_mcp.services.runs import RunDetail, RunPage, TaskDetail
from aop_mcp.services.task_logs import TaskLogs
from aop_mcp.workflow import WorkflowDocument


def when(at: float | None) -> datetime | None:
    """Seconds since the epoch as an aware UTC datetime (ISO 8601 once serialised)."""
    return None if at is None else datetime.fromtimestamp(at, UTC)


def _when(at: float) -> datetime:
    return datetime.fromtimestamp(at, UTC)


def _error(error: TaskError | None) -> s.TaskErrorView | None:
    if error is None:
        return None
    return s.TaskErrorView(kind=error.kind, message=error.message, exit_code=error.exit_code)


def _output(output: TaskOutput | None) -> s.TaskOutputView | None:
    return None if output is None else s.TaskOutputView.model_validate(output.to_dict())


def _task_ids(document: dict[str, Any]) -> list[str]:
    tasks = document.get("tasks") or []
    return [str(task.get("id")) for task in tasks if isinstance(task, dict)]


def workflow_summary(stored: WorkflowVersion) -> s.WorkflowSummary:
    """A stored workflow version without its document."""
    return s.WorkflowSummary(
        name=stored.name,
        version=stored.version,
        digest=stored.digest,
        description=str(stored.document.get("description", "")),
        tasks=_task_ids(stored.document),
        created_at=_when(stored.created_at),
    )


def workflows(stored: Sequence[WorkflowVersion]) -> s.WorkflowList:
    """The latest version of every workflow."""
    return s.WorkflowList(items=[workflow_summary(item) for item in stored])


def workflow(stored: WorkflowVersion) -> s.WorkflowView:
    """A stored workflow version with its document."""
    return s.WorkflowView(**workflow_summary(stored).model_dump(), document=stored.document)


def workflow_defined(stored: WorkflowVersion, created: bool) -> s.WorkflowDefined:
    """The answer to defining a workflow."""
    return s.WorkflowDefined(
        name=stored.name, version=stored.version, digest=stored.digest, created=created
    )


def workflow_valid(document: WorkflowDocument) -> s.WorkflowValid:
    """The answer to validating a document that is valid."""
    return s.WorkflowValid(
        name=document.name,
        digest=document.digest(),
        tasks=[task.id for task in document.tasks],
    )


def run(record: Run) -> s.RunView:
    """A run without its tasks."""
    return s.RunView(
        id=record.id,
        workflow=record.workflow,
        workflow_version=record.workflow_version,
        status=record.status,
        inputs=record.inputs,
        created_at=_when(record.created_at),
        idempotency_key=record.idempotency_key,
        started_at=when(record.started_at),
        finished_at=when(record.finished_at),
        cancel_requested=record.cancel_requested,
        error=record.error,
    )


def task_run(record: TaskRun) -> s.TaskRunView:
    """One task of a run, with its latest output or error."""
    return s.TaskRunView(
        run_id=record.run_id,
        task_id=record.task_id,
        status=record.status,
        priority=record.priority,
        attempts=record.attempts,
        failures=record.failures,
        interruptions=record.interruptions,
        ready_at=when(record.ready_at),
        next_attempt_at=when(record.next_attempt_at),
        started_at=when(record.started_at),
        finished_at=when(record.finished_at),
        output=_output(record.output),
        error=_error(record.error),
        skip_reason=record.skip_reason,
        recovered_by=record.recovered_by,
        cached=record.cached,
    )


def attempt(record: Attempt) -> s.AttemptView:
    """One try of a task."""
    return s.AttemptView(
        run_id=record.run_id,
        task_id=record.task_id,
        number=record.number,
        status=record.status,
        worker=record.worker,
        started_at=_when(record.started_at),
        lease_until=when(record.lease_until),
        finished_at=when(record.finished_at),
        output=_output(record.output),
        error=_error(record.error),
    )


def run_detail(detail: RunDetail) -> s.RunDetailView:
    """A run and its tasks."""
    return s.RunDetailView(run=run(detail.run), tasks=task_runs(detail.tasks).items)


def run_page(page: RunPage) -> s.RunPage:
    """A page of runs, pointing at the next page unless it is the last."""
    return s.RunPage(items=[run(item) for item in page.runs], next_cursor=page.next_cursor)


def task_runs(records: Sequence[TaskRun]) -> s.TaskRunList:
    """The tasks of a run, in the run's order."""
    return s.TaskRunList(items=[task_run(item) for item in records])


def task_detail(detail: TaskDetail) -> s.TaskDetailView:
    """A task of a run with every attempt."""
    return s.TaskDetailView(
        task=task_run(detail.task), attempts=[attempt(item) for item in detail.attempts]
    )


def task_logs(logs: TaskLogs) -> s.TaskLogsView:
    """The captured output of one attempt."""
    chosen = logs.attempt
    output = chosen.output if chosen else None
    return s.TaskLogsView(
        run_id=logs.run_id,
        task_id=logs.task_id,
        attempt=chosen.number if chosen else None,
        status=chosen.status if chosen else None,
        exit_code=output.exit_code if output else None,
        stdout=logs.stdout,
        stderr=logs.stderr,
        stdout_truncated=output.stdout_truncated if output else False,
        stderr_truncated=output.stderr_truncated if output else False,
    )


def dead_letter(record: DeadLetter) -> s.DeadLetterView:
    """A task that failed for good."""
    return s.DeadLetterView(
        id=record.id,
        run_id=record.run_id,
        task_id=record.task_id,
        attempts=record.attempts,
        error=_error(record.error),
        created_at=_when(record.created_at),
        replayed_at=when(record.replayed_at),
    )


def dead_letters(records: Sequence[DeadLetter], next_cursor: str | None) -> s.DeadLetterList:
    """A page of the dead-letter queue, oldest first."""
    return s.DeadLetterList(items=[dead_letter(item) for item in records], next_cursor=next_cursor)


def event(record: Event) -> s.EventView:
    """A persisted event."""
    return s.EventView(
        seq=record.seq,
        run_id=record.run_id,
        type=record.type,
        at=_when(record.at),
        task_id=record.task_id,
        data=record.data,
    )


def agent(status: AgentStatus) -> s.AgentView:
    """An agent with its health, load and breaker."""
    record, breaker = status.agent, status.breaker
    return s.AgentView(
        name=record.name,
        kind=record.kind,
        capabilities=list(record.capabilities),
        max_concurrency=record.max_concurrency,
        weight=record.weight,
        config=public_config(record.config),
        version=record.version,
        health=record.health,
        health_reason=record.health_reason,
        health_changed_at=_when(record.health_changed_at),
        last_heartbeat_at=when(record.last_heartbeat_at),
        active=status.active,
        breaker=s.BreakerView(
            state=breaker.state, failures=breaker.failures, open_until=when(breaker.open_until)
        ),
        created_at=_when(record.created_at),
        updated_at=_when(record.updated_at),
        deregistered_at=when(record.deregistered_at),
    )


def agents(statuses: Sequence[AgentStatus]) -> s.AgentList:
    """Agents, by name."""
    return s.AgentList(items=[agent(status) for status in statuses])


def agent_versions(records: Sequence[AgentVersion]) -> s.AgentVersionList:
    """Every configuration of an agent, oldest first."""
    return s.AgentVersionList(
        items=[
            s.AgentVersionView(
                name=v.name,
                version=v.version,
                kind=v.kind,
                capabilities=list(v.capabilities),
                max_concurrency=v.max_concurrency,
                weight=v.weight,
                config=public_config(v.config),
                created_at=_when(v.created_at),
            )
            for v in records
        ]
    )


def secret(info: SecretInfo) -> s.SecretView:
    return s.SecretView(
        name=info.name,
        version=info.version,
        created_at=_when(info.created_at),
        updated_at=_when(info.updated_at),
    )


def secrets(infos: Sequence[SecretInfo]) -> s.SecretList:
    return s.SecretList(items=[secret(info) for info in infos])
