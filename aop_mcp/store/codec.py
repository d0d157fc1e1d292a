"""Records to SQL parameters and rows back to records; shared JSON normalisation.

Rows are read as `sqlite3.Row` (or any mapping by column name). JSON columns hold the text
written by `aop_mcp.models.dumps`; enums are stored by value.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from aop_mcp.models import (
    Agent,
    AgentHealth,
    AgentKind,
    AgentVersion,
    Attempt,
    AttemptStatus,
    DeadLetter,
    Event,
    NewEvent,
    Owner,
    Run,
    RunLease,
    RunStatus,
    Secret,
    TaskError,
    TaskOutput,
    TaskRun,
    TaskStatus,
    Token,
    WorkflowVersion,
    dumps,
)

Row = Mapping[str, Any]


def normal(value: Any) -> Any:
    """The value as it comes back from storage (tuples become lists, keys strings...)."""
    return json.loads(dumps(value))


def output_text(output: TaskOutput | None) -> str | None:
    return None if output is None else dumps(output.to_dict())


def error_text(error: TaskError | None) -> str | None:
    return None if error is None else dumps(error.to_dict())


def output_of(text: str | None) -> TaskOutput | None:
    return None if text is None else TaskOutput.from_dict(json.loads(text))


def error_of(text: str | None) -> TaskError | None:
    return None if text is None else TaskError.from_dict(json.loads(text))


def workflow_of(row: Row) -> WorkflowVersion:
    return WorkflowVersion(
        name=row["name"],
        version=row["version"],
        digest=row["digest"],
        document=json.loads(row["document"]),
        created_at=row["created_at"],
    )


def run_params(run: Run) -> dict[str, Any]:
    return {
        "id": run.id,
        "workflow": run.workflow,
        "workflow_version": run.workflow_version,
        "status": run.status.value,
        "inputs": dumps(run.inputs),
        "idempotency_key": run.idempotency_key,
        "created_at": run.created_at,
        "started_at": run.started_at,
        "finished_at": run.finished_at,
        "cancel_requested": int(run.cancel_requested),
        "error": run.error,
    }


def run_of(row: Row) -> Run:
    return Run(
        id=row["id"],
        workflow=row["workflow"],
        workflow_version=row["workflow_version"],
        status=RunStatus(row["status"]),
        inputs=json.loads(row["inputs"]),
        created_at=row["created_at"],
        idempotency_key=row["idempotency_key"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        cancel_requested=bool(row["cancel_requested"]),
        error=row["error"],
    )


def task_run_params(task_run: TaskRun) -> dict[str, Any]:
    return {
        "run_id": task_run.run_id,
        "task_id": task_run.task_id,
        "status": task_run.status.value,
        "priority": task_run.priority,
        "attempts": task_run.attempts,
        "failures": task_run.failures,
        "interruptions": task_run.interruptions,
        "ready_at": task_run.ready_at,
        "next_attempt_at": task_run.next_attempt_at,
        "started_at": task_run.started_at,
        "finished_at": task_run.finished_at,
        "output": output_text(task_run.output),
        "error": error_text(task_run.error),
        "skip_reason": task_run.skip_reason,
        "recovered_by": task_run.recovered_by,
        "cached": int(task_run.cached),
    }


def task_run_of(row: Row) -> TaskRun:
    return TaskRun(
        run_id=row["run_id"],
        task_id=row["task_id"],
        status=TaskStatus(row["status"]),
        priority=row["priority"],
        attempts=row["attempts"],
        failures=row["failures"],
        interruptions=row["interruptions"],
        ready_at=row["ready_at"],
        next_attempt_at=row["next_attempt_at"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        output=output_of(row["output"]),
        error=error_of(row["error"]),
        skip_reason=row["skip_reason"],
        recovered_by=row["recovered_by"],
        cached=bool(row["cached"]),
    )


def attempt_params(attempt: Attempt) -> dict[str, Any]:
    return {
        "run_id": attempt.run_id,
        "task_id": attempt.task_id,
        "number": attempt.number,
        "status": attempt.status.value,
        "worker": attempt.worker,
        "started_at": attempt.started_at,
        "lease_until": attempt.lease_until,
        "finished_at": attempt.finished_at,
        "output": output_text(attempt.output),
        "error": error_text(attempt.error),
        # Not a field: a copy of output.agent in a column, so an index can find it.
        "agent": None if attempt.output is None else attempt.output.agent,
    }


def attempt_of(row: Row) -> Attempt:
    return Attempt(
        run_id=row["run_id"],
        task_id=row["task_id"],
        number=row["number"],
        status=AttemptStatus(row["status"]),
        worker=row["worker"],
        started_at=row["started_at"],
        lease_until=row["lease_until"],
        finished_at=row["finished_at"],
        output=output_of(row["output"]),
        error=error_of(row["error"]),
    )


def dead_letter_params(dead_letter: DeadLetter) -> dict[str, Any]:
    return {
        "id": dead_letter.id,
        "run_id": dead_letter.run_id,
        "task_id": dead_letter.task_id,
        "attempts": dead_letter.attempts,
        "error": dumps(dead_letter.error.to_dict()),
        "created_at": dead_letter.created_at,
        "replayed_at": dead_letter.replayed_at,
    }


def dead_letter_of(row: Row) -> DeadLetter:
    return DeadLetter(
        id=row["id"],
        run_id=row["run_id"],
        task_id=row["task_id"],
        attempts=row["attempts"],
        error=TaskError.from_dict(json.loads(row["error"])),
        created_at=row["created_at"],
        replayed_at=row["replayed_at"],
    )


def event_params(event: NewEvent) -> dict[str, Any]:
    return {
        "run_id": event.run_id,
        "task_id": event.task_id,
        "type": event.type,
        "at": event.at,
        "data": dumps(event.data),
    }


def event_of(row: Row) -> Event:
    return Event(
        seq=row["seq"],
        run_id=row["run_id"],
        type=row["type"],
        at=row["at"],
        task_id=row["task_id"],
        data=json.loads(row["data"]),
    )


def lease_params(run_id: str, owner: Owner, lease_until: float) -> dict[str, Any]:
    return {
        "run_id": run_id,
        "owner_id": owner.id,
        "owner_host": owner.host,
        "owner_pid": owner.pid,
        "lease_until": lease_until,
    }


def lease_of(row: Row) -> RunLease:
    """A row of run_leases."""
    owner = Owner(row["owner_id"], row["owner_host"], row["owner_pid"])
    return RunLease(row["run_id"], owner, row["lease_until"])


def joined_lease_of(row: Row) -> RunLease | None:
    """The lease columns of an `active_runs` row (a run LEFT JOIN its lease)."""
    if row["lease_owner_id"] is None:
        return None
    owner = Owner(row["lease_owner_id"], row["lease_owner_host"], row["lease_owner_pid"])
    return RunLease(row["id"], owner, row["lease_until"])


def token_params(token: Token) -> dict[str, Any]:
    return {
        "id": token.id,
        "name": token.name,
        "role": token.role,
        "hash": token.hash,
        "created_at": token.created_at,
        "last_used_at": token.last_used_at,
        "revoked_at": token.revoked_at,
    }


def token_of(row: Row) -> Token:
    return Token(
        id=row["id"],
        name=row["name"],
        role=row["role"],
        hash=row["hash"],
        created_at=row["created_at"],
        last_used_at=row["last_used_at"],
        revoked_at=row["revoked_at"],
    )


def agent_params(agent: Agent) -> dict[str, Any]:
    return {
        "name": agent.name,
        "kind": agent.kind.value,
        "capabilities": dumps(list(agent.capabilities)),
        "max_concurrency": agent.max_concurrency,
        "weight": agent.weight,
        "config": dumps(agent.config),
        "version": agent.version,
        "created_at": agent.created_at,
        "updated_at": agent.updated_at,
        "health": agent.health.value,
        "health_reason": agent.health_reason,
        "health_changed_at": agent.health_changed_at,
        "last_heartbeat_at": agent.last_heartbeat_at,
        "deregistered_at": agent.deregistered_at,
    }


def agent_of(row: Row) -> Agent:
    return Agent(
        name=row["name"],
        kind=AgentKind(row["kind"]),
        capabilities=tuple(json.loads(row["capabilities"])),
        max_concurrency=row["max_concurrency"],
        weight=row["weight"],
        config=json.loads(row["config"]),
        version=row["version"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        health=AgentHealth(row["health"]),
        health_reason=row["health_reason"],
        health_changed_at=row["health_changed_at"],
        last_heartbeat_at=row["last_heartbeat_at"],
        deregistered_at=row["deregistered_at"],
    )


def agent_version_params(version: AgentVersion) -> dict[str, Any]:
    return {
        "name": version.name,
        "version": version.version,
        "kind": version.kind.value,
        "capabilities": dumps(list(version.capabilities)),
        "max_concurrency": version.max_concurrency,
        "weight": version.weight,
        "config": dumps(version.config),
        "created_at": version.created_at,
    }


def agent_version_of(row: Row) -> AgentVersion:
    return AgentVersion(
        name=row["name"],
        version=row["version"],
        kind=AgentKind(row["kind"]),
        capabilities=tuple(json.loads(row["capabilities"])),
        max_concurrency=row["max_concurrency"],
        weight=row["weight"],
        config=json.loads(row["config"]),
        created_at=row["created_at"],
    )


def secret_params(secret: Secret) -> dict[str, Any]:
    return {
        "name": secret.name,
        "version": secret.version,
        "ciphertext": secret.ciphertext,
        "created_at": secret.created_at,
        "updated_at": secret.updated_at,
    }


def secret_of(row: Row) -> Secret:
    return Secret(
        name=row["name"],
        version=row["version"],
        ciphertext=row["ciphertext"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )
