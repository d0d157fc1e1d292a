"""Running failed work again: one dead letter, or every failed task of a finished run."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from aop_mcp.engine import progress
from aop_mcp.engine.progress import RunState, Step
from aop_mcp.models import DeadLetter, RunStatus, TaskStatus


def replay_dead_letter(step: Step, state: RunState, letter: DeadLetter) -> None:
    """Give the task a fresh retry budget and re-open what was skipped because of it."""
    task_run = state.tasks[letter.task_id]
    progress.put_task(
        step,
        state,
        replace(task_run, status=TaskStatus.PENDING, failures=0, error=None, finished_at=None),
    )
    step.changes.put_dead_letter(replace(letter, replayed_at=step.now))
    step.emit(state, "task.replayed", letter.task_id, dead_letter_id=letter.id)
    _reopen(step, state, [letter.task_id])


def retry_failed_tasks(step: Step, state: RunState, letters: Sequence[DeadLetter]) -> list[str]:
    """Put every failed or cancelled task of a finished run back, with fresh budgets.

    Their dead letters count as replayed. Returns the ids of the tasks put back.
    """
    again = [
        task_id
        for task_id, task_run in state.tasks.items()
        if task_run.status is TaskStatus.CANCELLED
        or (task_run.status is TaskStatus.FAILED and task_run.recovered_by is None)
    ]
    for task_id in again:
        task_run = state.tasks[task_id]
        reset = replace(
            task_run, status=TaskStatus.PENDING, failures=0, error=None, finished_at=None
        )
        progress.put_task(step, state, reset)
    for letter in letters:
        if letter.replayed_at is None and letter.task_id in again:
            step.changes.put_dead_letter(replace(letter, replayed_at=step.now))
    _reopen(step, state, again)
    return again


def _reopen(step: Step, state: RunState, task_ids: Sequence[str]) -> None:
    for task_id in _skipped_because_of_failures(state):
        progress.put_task(
            step,
            state,
            replace(
                state.tasks[task_id], status=TaskStatus.PENDING, skip_reason=None, finished_at=None
            ),
        )
    if state.run.status.finished:
        reopened = replace(
            state.run,
            status=RunStatus.RUNNING,
            finished_at=None,
            error=None,
            cancel_requested=False,
        )
        progress.put_run(step, state, reopened)
        step.emit(state, "run.resumed", tasks=list(task_ids))
    progress.settle(step, state)


def _skipped_because_of_failures(state: RunState) -> list[str]:
    """Tasks skipped for an upstream that did not succeed: settle() decides them again."""
    return [
        task_id
        for task_id, task_run in state.tasks.items()
        if task_run.status is TaskStatus.SKIPPED
        and (task_run.skip_reason or "").startswith("upstream")
    ]
