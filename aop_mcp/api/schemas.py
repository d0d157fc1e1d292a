"""The REST API's request and response models: they validate bodies and queries and are the
component schemas of the OpenAPI document, so the document cannot drift from the wire.

Times are ISO 8601 strings (UTC). Response models are built only by `views.py`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from aop_mcp.agents.breaker import BreakerState
from aop_mcp.models import AgentHealth, AgentKind, AttemptStatus, FailureKind, RunStatus, TaskStatus

MAX_PAGE = 200


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Response(BaseModel):
    model_config = ConfigDict(frozen=True)


# --- requests -------------------------------------------------------------------------------


class StartRunRequest(_Request):
    """Start a run of a workflow."""

    inputs: dict[str, Any] = Field(default_factory=dict, description="the run's inputs by name")
    idempotency_key: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="a key used before returns the run it started instead of a new one",
    )
    version: int | None = Field(
        default=None, ge=1, description="the workflow version to run; its latest by default"
    )


class GetWorkflowQuery(_Request):
    version: int | None = Field(default=None, ge=1, description="a version; the latest if absent")


class ListRunsQuery(_Request):
    workflow: str | None = Field(default=None, description="only runs of this workflow")
    status: list[RunStatus] = Field(
        default_factory=list,
        description="only runs in these statuses (repeat the parameter or separate by commas)",
    )
    limit: int = Field(default=50, ge=1, le=MAX_PAGE, description="the most runs in a page")
    cursor: str | None = Field(
        default=None, description="`next_cursor` of the previous page: the page after it"
    )


class LogsQuery(_Request):
    attempt: int | None = Field(default=None, ge=1, description="an attempt; the latest if absent")


class DeadLettersQuery(_Request):
    run_id: str | None = Field(default=None, description="only dead letters of this run")
    include_replayed: bool = Field(default=False, description="also those already replayed")
    limit: int = Field(default=50, ge=1, le=MAX_PAGE, description="the most dead letters a page")
    cursor: str | None = Field(
        default=None, description="`next_cursor` of the previous page: the page after it"
    )


class EventsQuery(_Request):
    run_id: str | None = Field(default=None, description="only events of this run")
    after: int | None = Field(
        default=None,
        ge=0,
        description="replay events with a greater seq first (the Last-Event-ID header wins)",
    )


class AgentsQuery(_Request):
    capability: str | None = Field(default=None, description="only agents that can do this")
    kind: AgentKind | None = Field(default=None, description="only agents of this kind")
    health: AgentHealth | None = Field(default=None, description="only agents in this health")


class SetSecretRequest(_Request):
    """Set a secret: its value is encrypted at rest and never shown again."""

    value: str = Field(min_length=1, description="the secret's value")


# --- responses ------------------------------------------------------------------------------


class TaskErrorView(_Response):
    kind: FailureKind
    message: str
    exit_code: int | None = None


class TaskOutputView(_Response):
    exit_code: int | None
    stdout: str
    stderr: str
    json_value: Any = Field(
        default=None, alias="json", description="stdout parsed as JSON, when it is JSON"
    )
    duration: float
    attempt: int
    stdout_truncated: bool
    stderr_truncated: bool
    cap_bytes: int
    image_digest: str | None = Field(
        default=None, description="the container image a dagger task ran (sha256:...)"
    )
    agent: str | None = Field(default=None, description="the agent that served an agent task")

    model_config = ConfigDict(frozen=True, populate_by_name=True, serialize_by_alias=True)


class WorkflowSummary(_Response):
    name: str
    version: int
    digest: str
    description: str
    tasks: list[str] = Field(description="the ids of its tasks")
    created_at: datetime


class WorkflowView(WorkflowSummary):
    document: dict[str, Any] = Field(description="the stored (canonical) document")


class WorkflowList(_Response):
    items: list[WorkflowSummary]


class WorkflowDefined(_Response):
    name: str
    version: int
    digest: str
    created: bool = Field(description="false: identical to the latest version, nothing stored")


class WorkflowValid(_Response):
    valid: bool = True
    name: str
    digest: str
    tasks: list[str]


class RunView(_Response):
    id: str
    workflow: str
    workflow_version: int
    status: RunStatus
    inputs: dict[str, Any]
    created_at: datetime
    idempotency_key: str | None
    started_at: datetime | None
    finished_at: datetime | None
    cancel_requested: bool
    error: str | None


class TaskRunView(_Response):
    run_id: str
    task_id: str
    status: TaskStatus
    priority: int
    attempts: int = Field(description="attempts started so far")
    failures: int
    interruptions: int
    ready_at: datetime | None
    next_attempt_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    output: TaskOutputView | None
    error: TaskErrorView | None
    skip_reason: str | None
    recovered_by: str | None
    cached: bool = Field(description="output reused from the result cache, not executed")


class AttemptView(_Response):
    run_id: str
    task_id: str
    number: int
    status: AttemptStatus
    worker: str
    started_at: datetime
    lease_until: datetime | None
    finished_at: datetime | None
    output: TaskOutputView | None
    error: TaskErrorView | None


class RunDetailView(_Response):
    run: RunView
    tasks: list[TaskRunView]


class RunPage(_Response):
    items: list[RunView]
    next_cursor: str | None = Field(description="pass as `cursor` for the next page; null: last")


class TaskRunList(_Response):
    items: list[TaskRunView]


class TaskDetailView(_Response):
    task: TaskRunView
    attempts: list[AttemptView]


class TaskLogsView(_Response):
    run_id: str
    task_id: str
    attempt: int | None = Field(description="the attempt shown; null: not tried yet")
    status: AttemptStatus | None
    exit_code: int | None
    stdout: str
    stderr: str
    stdout_truncated: bool
    stderr_truncated: bool


class DeadLetterView(_Response):
    id: str
    run_id: str
    task_id: str
    attempts: int
    error: TaskErrorView
    created_at: datetime
    replayed_at: datetime | None


class DeadLetterList(_Response):
    items: list[DeadLetterView]
    next_cursor: str | None = Field(description="pass as `cursor` for the next page; null: last")


class EventView(_Response):
    """The `data` of each server-sent event of `GET /events`."""

    seq: int
    run_id: str
    type: str
    at: datetime
    task_id: str | None
    data: dict[str, Any]


class BreakerView(_Response):
    state: BreakerState = Field(description="closed, open (refuses work) or half_open (a trial)")
    failures: int = Field(description="failed tasks in a row")
    open_until: datetime | None = Field(description="when an open breaker lets a trial through")


class AgentView(_Response):
    name: str
    kind: AgentKind
    capabilities: list[str]
    max_concurrency: int
    weight: int
    config: dict[str, Any] = Field(description="by kind; `env` and `headers` values hidden")
    version: int
    health: AgentHealth
    health_reason: str
    health_changed_at: datetime
    last_heartbeat_at: datetime | None
    active: int = Field(description="tasks running on it now")
    breaker: BreakerView
    created_at: datetime
    updated_at: datetime
    deregistered_at: datetime | None


class AgentList(_Response):
    items: list[AgentView]


class AgentVersionView(_Response):
    name: str
    version: int
    kind: AgentKind
    capabilities: list[str]
    max_concurrency: int
    weight: int
    config: dict[str, Any]
    created_at: datetime


class AgentVersionList(_Response):
    items: list[AgentVersionView] = Field(description="oldest first")


class SecretView(_Response):
    """A secret without its value: no route ever returns a value."""

    name: str
    version: int = Field(description="1 when first set, one more at each set")
    created_at: datetime
    updated_at: datetime


class SecretList(_Response):
    items: list[SecretView] = Field(description="by name")


class ProblemItem(_Response):
    task: str | None = Field(description="the task at fault, if one is")
    field: str
    message: str


class ProblemView(_Response):
    """An RFC 9457 problem: every error of this API has this shape."""

    type: str = Field(description="a URI naming the kind of problem")
    title: str
    status: int
    detail: str
    errors: list[ProblemItem] | None = Field(
        default=None, description="each fault of an invalid workflow, inputs or request"
    )
