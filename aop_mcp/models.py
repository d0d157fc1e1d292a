"""Durable records: plain frozen data with Enum statuses.

Vocabulary: a *Workflow* and its *Tasks* are definitions; a *Run* and its *TaskRuns* are
executions; an *Attempt* is one try of a TaskRun. Times are seconds since the epoch (float).
"""

from __future__ import annotations

import json
import os
import secrets
import time
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class RunStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        return self in _FINISHED_RUN


_FINISHED_RUN = {RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED}


class TaskStatus(StrEnum):
    PENDING = "pending"  # waiting for the tasks it needs
    READY = "ready"  # may run now, or at next_attempt_at after a failed attempt
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"  # failed for good (retries spent, or not retryable)
    SKIPPED = "skipped"  # never ran: see skip_reason
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        return self in _FINISHED_TASK


_FINISHED_TASK = {
    TaskStatus.SUCCEEDED,
    TaskStatus.FAILED,
    TaskStatus.SKIPPED,
    TaskStatus.CANCELLED,
}


class AttemptStatus(StrEnum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


class FailureKind(StrEnum):
    """Why an attempt failed; a task's `retry_on` selects which kinds are retried."""

    EXIT_CODE = "exit_code"  # the process ran and exited non-zero
    TIMEOUT = "timeout"  # the attempt outlived the task's timeout and was killed
    ERROR = "error"  # the executor could not run it, or the callable raised
    INTERRUPTED = "interrupted"  # the engine stopped or crashed while it ran
    TEMPLATE = "template"  # a template in the task could not be rendered: never retried
    AGENT_ERROR = "agent_error"  # the agent ran and reported an error
    UNAVAILABLE = "unavailable"  # no healthy agent with free capacity until the timeout
    INVALID_OUTPUT = "invalid_output"  # the agent's reply was not what the task needs
    REJECTED = "rejected"  # the agent said retrying cannot help: never retried
    # The server lacks what the task needs (a Dagger engine, a secret): retrying cannot help
    # until someone fixes that, so it is never retried; replay the dead letter afterwards.
    MISCONFIGURED = "misconfigured"


def new_id(prefix: str) -> str:
    """A sortable, unique id: prefix, milliseconds since the epoch, then randomness."""
    return f"{prefix}_{time.time_ns() // 1_000_000:011x}{secrets.token_hex(5)}"


@dataclass(frozen=True, slots=True)
class TaskOutput:
    """What one attempt produced. stdout/stderr are capped at `cap_bytes` each."""

    exit_code: int | None = None
    stdout: str = ""
    stderr: str = ""
    json: Any = None  # stdout parsed as JSON when it is JSON (or a callable's return value)
    duration: float = 0.0
    attempt: int = 0
    stdout_truncated: bool = False
    stderr_truncated: bool = False
    cap_bytes: int = 0
    image_digest: str | None = None  # the container image a Dagger task ran, when known
    agent: str | None = None  # the agent that served an `agent` task's attempt

    def to_dict(self) -> dict[str, Any]:
        # Spelled out: dataclasses.asdict deep-copies and is several times slower.
        data: dict[str, Any] = {
            "exit_code": self.exit_code,
            "stdout": self.stdout,
            "stderr": self.stderr,
            "json": self.json,
            "duration": self.duration,
            "attempt": self.attempt,
            "stdout_truncated": self.stdout_truncated,
            "stderr_truncated": self.stderr_truncated,
            "cap_bytes": self.cap_bytes,
        }
        # Only where there is one: the outputs of other executors are stored as before.
        if self.image_digest is not None:
            data["image_digest"] = self.image_digest
        if self.agent is not None:
            data["agent"] = self.agent
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TaskOutput:
        return cls(**data)


@dataclass(frozen=True, slots=True)
class TaskError:
    """Why an attempt (or a task, when it failed for good) failed."""

    kind: FailureKind
    message: str
    exit_code: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"kind": str(self.kind), "message": self.message, "exit_code": self.exit_code}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TaskError:
        return cls(FailureKind(data["kind"]), data["message"], data.get("exit_code"))


@dataclass(frozen=True, slots=True)
class WorkflowVersion:
    name: str
    version: int
    digest: str  # sha256 of the canonical document: equal digests, same version
    document: dict[str, Any]
    created_at: float


@dataclass(frozen=True, slots=True)
class Run:
    id: str
    workflow: str
    workflow_version: int
    status: RunStatus
    inputs: dict[str, Any]
    created_at: float
    idempotency_key: str | None = None
    started_at: float | None = None
    finished_at: float | None = None
    cancel_requested: bool = False
    error: str | None = None


@dataclass(frozen=True, slots=True)
class TaskRun:
    run_id: str
    task_id: str
    status: TaskStatus
    priority: int = 0
    attempts: int = 0  # attempts started, of every kind: the next one is number attempts + 1
    failures: int = 0  # failed attempts counted toward max_attempts; a replay resets it
    interruptions: int = 0  # attempts lost to an engine crash or stop: never counted
    ready_at: float | None = None  # when it became ready: the queue's age order
    next_attempt_at: float | None = None  # earliest start of the next attempt (backoff)
    started_at: float | None = None
    finished_at: float | None = None
    output: TaskOutput | None = None
    error: TaskError | None = None
    skip_reason: str | None = None
    recovered_by: str | None = None  # the fallback task that stood in after it failed
    cached: bool = False  # its output was taken from the result cache, not executed


@dataclass(frozen=True, slots=True)
class Attempt:
    run_id: str
    task_id: str
    number: int
    status: AttemptStatus
    worker: str
    started_at: float
    lease_until: float | None = None
    finished_at: float | None = None
    output: TaskOutput | None = None
    error: TaskError | None = None


@dataclass(frozen=True, slots=True)
class DeadLetter:
    id: str
    run_id: str
    task_id: str
    attempts: int
    error: TaskError
    created_at: float
    replayed_at: float | None = None


@dataclass(frozen=True, slots=True)
class Token:
    """A bearer token. Only the SHA-256 of its secret is kept; the secret is shown once.

    `role` is the value of `aop_mcp.security.principal.Role`, kept as text so records do
    not depend on the security layer.
    """

    id: str
    name: str
    role: str
    hash: str  # hex SHA-256 of the secret: what a presented token is looked up by
    created_at: float
    last_used_at: float | None = None  # updated at most about once a minute
    revoked_at: float | None = None


@dataclass(frozen=True, slots=True)
class Secret:
    """A named secret. Only its Fernet ciphertext is stored; the value is never kept in clear."""

    name: str
    version: int  # 1 when first set, one more at each set
    ciphertext: str  # a Fernet token (URL-safe base64 text)
    created_at: float
    updated_at: float


@dataclass(frozen=True, slots=True)
class NewEvent:
    run_id: str
    type: str
    at: float
    task_id: str | None = None
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Event:
    """A persisted event; `seq` orders all events of a store."""

    seq: int
    run_id: str
    type: str
    at: float
    task_id: str | None = None
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Owner:
    """An engine process that drives runs: it holds a lease on each run it drives."""

    id: str
    host: str
    pid: int

    @classmethod
    def this_process(cls) -> Owner:
        return cls(id=new_id("engine"), host=os.uname().nodename, pid=os.getpid())

    def __str__(self) -> str:
        return f"{self.id} (pid {self.pid} on {self.host})"


@dataclass(frozen=True, slots=True)
class RunLease:
    run_id: str
    owner: Owner
    lease_until: float


@dataclass(frozen=True, slots=True)
class CacheEntry:
    """A task's output kept under its cache key, and when it was stored (for ttls)."""

    output: TaskOutput
    created_at: float


@dataclass(slots=True)
class Changes:
    """One atomic batch of writes. Later puts of the same record replace earlier ones."""

    runs: dict[str, Run] = field(default_factory=dict)
    task_runs: dict[tuple[str, str], TaskRun] = field(default_factory=dict)
    attempts: dict[tuple[str, str, int], Attempt] = field(default_factory=dict)
    dead_letters: dict[str, DeadLetter] = field(default_factory=dict)
    cache: dict[str, CacheEntry] = field(default_factory=dict)
    released_runs: set[str] = field(default_factory=set)
    events: list[NewEvent] = field(default_factory=list)

    def put_run(self, run: Run) -> None:
        self.runs[run.id] = run

    def put_task_run(self, task_run: TaskRun) -> None:
        self.task_runs[(task_run.run_id, task_run.task_id)] = task_run

    def put_attempt(self, attempt: Attempt) -> None:
        self.attempts[(attempt.run_id, attempt.task_id, attempt.number)] = attempt

    def put_dead_letter(self, dead_letter: DeadLetter) -> None:
        self.dead_letters[dead_letter.id] = dead_letter

    def emit(self, event: NewEvent) -> None:
        self.events.append(event)

    def __bool__(self) -> bool:
        return bool(
            self.runs
            or self.task_runs
            or self.attempts
            or self.dead_letters
            or self.cache
            or self.released_runs
            or self.events
        )


def dumps(value: Any) -> str:
    """Compact JSON for storage."""
    return json.dumps(value, separators=(",", ":"), default=str)


class AgentKind(StrEnum):
    FAST_AGENT = "fast-agent"  # run in this process by the Fast-Agent adapter
    MCP = "mcp"  # a remote MCP server: one of its tools does the work
    PULL = "pull"  # claims work itself over MCP (task_claim)


class AgentHealth(StrEnum):
    HEALTHY = "healthy"
    DEGRADED = "degraded"  # answering, but late or failing some probes: used only if needed
    UNHEALTHY = "unhealthy"  # failing probes: not selected
    OFFLINE = "offline"  # no heartbeat or probe answer for long: not selected


@dataclass(frozen=True, slots=True)
class Agent:
    """A registered agent, at its current configuration version."""

    name: str
    kind: AgentKind
    capabilities: tuple[str, ...]
    max_concurrency: int
    weight: int
    config: dict[str, Any]  # kind-specific: see aop_mcp/agents/spec.py
    version: int
    created_at: float
    updated_at: float
    health: AgentHealth = AgentHealth.HEALTHY
    health_reason: str = "registered"
    health_changed_at: float = 0.0
    last_heartbeat_at: float | None = None
    deregistered_at: float | None = None


@dataclass(frozen=True, slots=True)
class AgentVersion:
    """One configuration an agent had; updating an agent keeps the old one here."""

    name: str
    version: int
    kind: AgentKind
    capabilities: tuple[str, ...]
    max_concurrency: int
    weight: int
    config: dict[str, Any]
    created_at: float
