"""How a run moves forward when one of its tasks ends: the engine's rules, without I/O.

Every function here changes a `RunState` in memory and records the same change in a
`Step` (the batch the engine commits next). The engine publishes nothing until that batch
is committed, so what listeners see is always what the store holds.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, field, replace
from typing import Any

from aop_mcp.models import (
    Attempt,
    AttemptStatus,
    CacheEntry,
    Changes,
    DeadLetter,
    FailureKind,
    NewEvent,
    Run,
    RunStatus,
    TaskError,
    TaskOutput,
    TaskRun,
    TaskStatus,
    new_id,
)
from aop_mcp.workflow import Graph, WorkflowDocument

#: An engine that keeps crashing while a task runs must not loop on it for ever.
MAX_INTERRUPTIONS = 5


@dataclass(eq=False)
class RunState:
    """One run the engine drives: its records, its definition and what is running."""

    run: Run
    document: WorkflowDocument
    graph: Graph
    tasks: dict[str, TaskRun]
    outputs: dict[str, TaskOutput] = field(default_factory=dict)
    running: dict[str, asyncio.Task[None]] = field(default_factory=dict)
    active: int = 0  # attempts started and not yet ended, launched or about to be
    cancelling: bool = False
    unfinished: int = 0

    def __post_init__(self) -> None:
        self.unfinished = sum(not t.status.finished for t in self.tasks.values())
        for task_id, task_run in self.tasks.items():
            if task_run.status is TaskStatus.SUCCEEDED and task_run.output is not None:
                self.outputs[task_id] = task_run.output
        for task_id, task_run in self.tasks.items():
            standin = task_run.recovered_by
            if standin is not None and standin in self.outputs:
                self.outputs[task_id] = self.outputs[standin]

    @property
    def id(self) -> str:
        return self.run.id


@dataclass(eq=False)
class Step:
    """What one turn of the engine changed: the batch to commit and the follow-ups."""

    now: float
    changes: Changes = field(default_factory=Changes)
    ready: list[tuple[RunState, str]] = field(default_factory=list)
    touched: set[RunState] = field(default_factory=set)
    finished: list[RunState] = field(default_factory=list)

    def emit(
        self, state: RunState, event_type: str, task_id: str | None = None, /, **data: Any
    ) -> None:
        self.changes.emit(NewEvent(state.id, event_type, self.now, task_id, data))


def put_task(step: Step, state: RunState, task_run: TaskRun) -> None:
    """Record a task run's new version, keeping the run's count of unfinished tasks."""
    old = state.tasks[task_run.task_id]
    state.unfinished += int(old.status.finished) - int(task_run.status.finished)
    state.tasks[task_run.task_id] = task_run
    step.changes.put_task_run(task_run)
    step.touched.add(state)


def put_run(step: Step, state: RunState, run: Run) -> None:
    state.run = run
    step.changes.put_run(run)


# Readiness -----------------------------------------------------------------------


def satisfied(state: RunState, task_id: str) -> bool:
    """True when dependants of `task_id` may use it: it succeeded, or its fallback did."""
    task_run = state.tasks[task_id]
    if task_run.status is TaskStatus.SUCCEEDED:
        return True
    standin = task_run.recovered_by
    return standin is not None and state.tasks[standin].status is TaskStatus.SUCCEEDED


def blocked_by(state: RunState, task_id: str) -> str | None:
    """The first need of `task_id` that can no longer be satisfied, if any."""
    primary = state.graph.fallback_of(task_id)
    if primary is not None and _settled_without_failure(state, primary):
        return primary
    for need in state.graph.needs(task_id):
        if _dead(state, need):
            return need
    return None


def _settled_without_failure(state: RunState, primary: str) -> bool:
    status = state.tasks[primary].status
    return status.finished and status is not TaskStatus.FAILED


def _dead(state: RunState, task_id: str) -> bool:
    """Finished without being usable, and no fallback left that could stand in."""
    task_run = state.tasks[task_id]
    if not task_run.status.finished or satisfied(state, task_id):
        return False
    if task_run.status is TaskStatus.FAILED:
        fallback = state.document.task(task_id).fallback
        if fallback is not None and not state.tasks[fallback].status.finished:
            return False
    return True


def can_start(state: RunState, task_id: str) -> bool:
    """All needs satisfied and, for a fallback, its primary failed for good."""
    primary = state.graph.fallback_of(task_id)
    if primary is not None and state.tasks[primary].status is not TaskStatus.FAILED:
        return False
    return all(satisfied(state, need) for need in state.graph.needs(task_id))


def mark_ready(step: Step, state: RunState, task_id: str, at: float | None = None) -> None:
    """Queue a task: now, or at `at` (a retry's backoff)."""
    task_run = state.tasks[task_id]
    put_task(
        step,
        state,
        replace(task_run, status=TaskStatus.READY, ready_at=step.now, next_attempt_at=at),
    )
    step.ready.append((state, task_id))


def settle(step: Step, state: RunState, candidates: list[str] | None = None) -> None:
    """Move pending tasks forward: ready when they can start, skipped when they never can.

    Walks in topological order so one pass settles a whole chain of skips.
    """
    order = state.graph.order if candidates is None else candidates
    for task_id in order:
        if state.tasks[task_id].status is not TaskStatus.PENDING or state.cancelling:
            continue
        blocker = blocked_by(state, task_id)
        if blocker is not None:
            skip(step, state, task_id, _skip_reason(state, blocker))
        elif can_start(state, task_id):
            mark_ready(step, state, task_id)


def _skip_reason(state: RunState, blocker: str) -> str:
    status = state.tasks[blocker].status
    if status is TaskStatus.SUCCEEDED:
        return f"not needed: {blocker!r} succeeded"
    return f"upstream {blocker!r} {status}"


def skip(step: Step, state: RunState, task_id: str, reason: str) -> None:
    """Skip a task that will never run, then everything that waited on it."""
    task_run = state.tasks[task_id]
    put_task(
        step,
        state,
        replace(task_run, status=TaskStatus.SKIPPED, skip_reason=reason, finished_at=step.now),
    )
    step.emit(state, "task.skipped", task_id, reason=reason)
    settle(step, state, _waiting_on(state, task_id))


def _waiting_on(state: RunState, task_id: str) -> list[str]:
    """Tasks whose fate depends on `task_id`: its dependants and its fallback."""
    waiting = list(state.graph.dependants(task_id))
    fallback = state.document.task(task_id).fallback
    if fallback is not None:
        waiting.append(fallback)
    primary = state.graph.fallback_of(task_id)
    if primary is not None:
        waiting.extend(state.graph.dependants(primary))
    return waiting


# Outcomes of an attempt ---------------------------------------------------------------


def attempt_started(step: Step, state: RunState, task_id: str, attempt: Attempt) -> None:
    """Record that an attempt starts now (committed before the executor is called)."""
    task_run = state.tasks[task_id]
    started = task_run.started_at or step.now
    put_task(
        step,
        state,
        replace(
            task_run,
            status=TaskStatus.RUNNING,
            attempts=attempt.number,
            started_at=started,
            next_attempt_at=None,
        ),
    )
    step.changes.put_attempt(attempt)
    if state.run.status is RunStatus.PENDING:
        put_run(step, state, replace(state.run, status=RunStatus.RUNNING, started_at=step.now))
        step.emit(state, "run.started")
    step.emit(state, "task.started", task_id, attempt=attempt.number)


def task_succeeded(
    step: Step,
    state: RunState,
    attempt: Attempt,
    output: TaskOutput,
    cache_key: str | None,
    cached: bool = False,
) -> None:
    """The attempt succeeded: the task is done and its dependants may start."""
    task_id = attempt.task_id
    step.changes.put_attempt(_finish(attempt, AttemptStatus.SUCCEEDED, step.now, output))
    task_run = state.tasks[task_id]
    done = replace(
        task_run,
        status=TaskStatus.SUCCEEDED,
        output=output,
        error=None,
        finished_at=step.now,
        cached=cached,
    )
    put_task(step, state, done)
    state.outputs[task_id] = output
    if cache_key is not None and not cached:
        # A later hit reuses the answer but no agent serves it: it must not count as theirs.
        kept = output if output.agent is None else replace(output, agent=None)
        step.changes.cache[cache_key] = CacheEntry(kept, created_at=step.now)
    step.emit(state, "task.succeeded", task_id, attempt=attempt.number, cached=cached)
    primary = state.graph.fallback_of(task_id)
    if primary is not None:
        _recovered(step, state, primary, task_id)
    settle(step, state, _waiting_on(state, task_id))


def _recovered(step: Step, state: RunState, primary: str, standin: str) -> None:
    put_task(step, state, replace(state.tasks[primary], recovered_by=standin))
    state.outputs[primary] = state.outputs[standin]
    step.emit(state, "task.recovered", primary, fallback=standin)


def attempt_failed(
    step: Step,
    state: RunState,
    attempt: Attempt,
    error: TaskError,
    output: TaskOutput | None,
    rng: random.Random,
    count_interruption: bool = True,
) -> None:
    """The attempt failed: retry (now or after backoff), or fail the task for good.

    An interruption (the engine stopped or crashed mid-attempt) never uses up the retry
    budget; a graceful stop (`count_interruption=False`) is not even counted as one.
    """
    task_id = attempt.task_id
    step.changes.put_attempt(_finish(attempt, AttemptStatus.FAILED, step.now, output, error))
    task_run = state.tasks[task_id]
    if error.kind is FailureKind.INTERRUPTED:
        _interrupted(step, state, task_run, error, int(count_interruption))
        return
    policy = state.document.task(task_id).retry
    failures = task_run.failures + 1
    task_run = replace(task_run, failures=failures, error=error, output=output)
    state.tasks[task_id] = task_run
    if policy.retries(error.kind) and failures < policy.max_attempts and not state.cancelling:
        at = step.now + policy.delay(failures, rng)
        mark_ready(step, state, task_id, at)
        step.emit(state, "task.retrying", task_id, attempt=attempt.number, at=at, **_brief(error))
        return
    task_failed(step, state, task_id, error)


def _interrupted(
    step: Step, state: RunState, task_run: TaskRun, error: TaskError, count: int
) -> None:
    interruptions = task_run.interruptions + count
    task_run = replace(task_run, interruptions=interruptions, error=error)
    state.tasks[task_run.task_id] = task_run
    if interruptions >= MAX_INTERRUPTIONS:
        message = f"interrupted {interruptions} times; giving up"
        task_failed(step, state, task_run.task_id, replace(error, message=message))
        return
    mark_ready(step, state, task_run.task_id)
    step.emit(state, "task.interrupted", task_run.task_id, attempt=task_run.attempts)


def task_failed(step: Step, state: RunState, task_id: str, error: TaskError) -> None:
    """Fail a task for good: its fallback runs, or it goes to the dead-letter queue."""
    task_run = state.tasks[task_id]
    put_task(
        step,
        state,
        replace(task_run, status=TaskStatus.FAILED, error=error, finished_at=step.now),
    )
    step.emit(state, "task.failed", task_id, **_brief(error))
    if state.document.task(task_id).fallback is None:
        letter = DeadLetter(
            id=new_id("dlq"),
            run_id=state.id,
            task_id=task_id,
            attempts=task_run.attempts,
            error=error,
            created_at=step.now,
        )
        step.changes.put_dead_letter(letter)
        step.emit(state, "task.dead_lettered", task_id, dead_letter_id=letter.id)
    settle(step, state, _waiting_on(state, task_id))


def attempt_cancelled(step: Step, state: RunState, attempt: Attempt) -> None:
    """The attempt was stopped because its run was cancelled."""
    step.changes.put_attempt(_finish(attempt, AttemptStatus.CANCELLED, step.now))
    cancel_task(step, state, attempt.task_id)


def cancel_task(step: Step, state: RunState, task_id: str) -> None:
    task_run = state.tasks[task_id]
    put_task(step, state, replace(task_run, status=TaskStatus.CANCELLED, finished_at=step.now))
    step.emit(state, "task.cancelled", task_id)


def _finish(
    attempt: Attempt,
    status: AttemptStatus,
    now: float,
    output: TaskOutput | None = None,
    error: TaskError | None = None,
) -> Attempt:
    return replace(attempt, status=status, finished_at=now, output=output, error=error)


def _brief(error: TaskError) -> dict[str, Any]:
    return {"kind": str(error.kind), "message": error.message}


# The run as a whole -------------------------------------------------------------------


def finish_if_done(step: Step, state: RunState) -> bool:
    """End the run when no task is left unfinished; returns True when it ended."""
    if state.unfinished or state.active or state.run.status.finished:
        return False
    if state.cancelling:
        status, error = RunStatus.CANCELLED, "cancelled"
    else:
        failed = [t.task_id for t in state.tasks.values() if _failed_unrecovered(t)]
        status = RunStatus.FAILED if failed else RunStatus.SUCCEEDED
        error = f"tasks failed: {', '.join(failed)}" if failed else None
    put_run(step, state, replace(state.run, status=status, finished_at=step.now, error=error))
    step.emit(state, f"run.{status}", error=error)
    step.changes.released_runs.add(state.id)
    step.finished.append(state)
    return True


def _failed_unrecovered(task_run: TaskRun) -> bool:
    return task_run.status is TaskStatus.FAILED and task_run.recovered_by is None
