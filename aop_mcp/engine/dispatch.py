"""Turning a ready task into an attempt: condition, templates, executor, cache key.

The cache key has two parts. `cache_key_of` hashes what the step knows synchronously (the
executor and the rendered `run` block); `settle_cache_key` adds, just before the lookup and
outside the engine's loop, what only the executor can find out (`KeyedExecutor`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING

from aop_mcp.engine import progress
from aop_mcp.engine.progress import RunState, Step
from aop_mcp.models import Attempt, AttemptStatus, FailureKind, TaskError
from aop_mcp.ports.executor import ExecutionRequest, Executor, KeyedExecutor
from aop_mcp.workflow import (
    CachePolicy,
    TemplateContext,
    TemplateError,
    evaluate_when,
    render_run,
)

if TYPE_CHECKING:
    from aop_mcp.engine.engine import Engine


@dataclass(slots=True)
class Launch:
    """An attempt recorded as started, to hand to its executor once that is committed."""

    state: RunState
    attempt: Attempt
    executor: Executor
    request: ExecutionRequest
    cache_key: str | None
    cache_not_before: float | None = None  # entries stored earlier than this have expired


def prepare_attempt(engine: Engine, step: Step, state: RunState, task_id: str) -> Launch | None:
    """Start an attempt of a ready task, or settle the task at once.

    A false `when` skips the task; a template that cannot be rendered fails it for good
    (running it again would render the same way). Neither uses an executor.
    """
    spec = state.document.task(task_id)
    context = TemplateContext(inputs=state.run.inputs, outputs=state.outputs)
    try:
        if spec.when is not None and not evaluate_when(spec.when, context):
            progress.skip(step, state, task_id, f"condition is false: {spec.when}")
            return None
        run_spec = render_run(spec.run, context)
    except TemplateError as exc:
        error = TaskError(FailureKind.TEMPLATE, f"{exc.field}: {exc.message}")
        progress.task_failed(step, state, task_id, error)
        return None
    executor = engine.executors.get(run_spec.executor)
    if executor is None:
        message = f"no {run_spec.executor!r} executor is configured in this server"
        progress.task_failed(step, state, task_id, TaskError(FailureKind.ERROR, message))
        return None
    attempt = Attempt(
        run_id=state.id,
        task_id=task_id,
        number=state.tasks[task_id].attempts + 1,
        status=AttemptStatus.RUNNING,
        worker=engine.owner.id,
        started_at=step.now,
        lease_until=engine.leases.lease_until,
    )
    progress.attempt_started(step, state, task_id, attempt)
    request = ExecutionRequest(
        run_id=state.id,
        task_id=task_id,
        attempt=attempt.number,
        spec=run_spec,
        timeout=spec.timeout,
        work_root=engine.limits.work_root,
        output_cap=engine.limits.output_cap,
    )
    if not spec.cache:
        return Launch(state, attempt, executor, request, None)
    ttl = spec.cache.ttl if isinstance(spec.cache, CachePolicy) else None
    not_before = None if ttl is None else step.now - ttl
    return Launch(state, attempt, executor, request, cache_key_of(executor, run_spec), not_before)


def cache_key_of(executor: Executor, run_spec: object) -> str:
    """What makes a task's result reusable: its executor, that executor's version and the
    rendered `run` block.

    The rendered block holds the command, image, env names and values and whatever inputs and
    upstream outputs its templates used, so a change to any of them makes a new key; so does a
    new executor version.
    """
    return _digest(
        {
            "executor": executor.name,
            "version": executor.version,
            "run": run_spec.model_dump(mode="json"),  # type: ignore[attr-defined]
        }
    )


async def settle_cache_key(launch: Launch, key: str) -> str:
    """The key a `cache` task's result is looked up and stored under: `key` (the launch's
    `cache_key`), with the executor's cache facts folded in when it has any.

    Awaited by the attempt itself, not in the engine's loop: the facts may need the store.
    An executor without facts keeps the plain key, so entries stored before stay valid.
    """
    if not isinstance(launch.executor, KeyedExecutor):
        return key
    facts = await launch.executor.cache_facts(launch.request.spec)
    return _digest({"key": key, "facts": dict(facts)}) if facts else key


def _digest(value: object) -> str:
    text = json.dumps(value, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()
