"""Replaying a dead letter: the task runs again in its run, and the run goes on."""

from __future__ import annotations

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
    for task_id in _skipped_because_of_failures(state):
        progress.put_task(
            step,
            state,
            replace(
                state.tasks[task_id],
                status=TaskStatus.PENDING,
                skip_reason=None,
                finished_at=None,
            ),
        )
    if state.run.status.finished:
        reopened = replace(state.run, status=RunStatus.RUNNING, finished_at=None, error=None)
        progress.put_run(step, state, reopened)
        step.emit(state, "run.resumed", dead_letter_id=letter.id)
    progress.settle(step, state)


def _skipped_because_of_failures(state: RunState) -> list[str]:
    """Tasks skipped for an upstream that did not succeed: settle() decides them again."""
    return [
        task_id
        for task_id, task_run in state.tasks.items()
        if task_run.status is TaskStatus.SKIPPED
        and (task_run.skip_reason or "").startswith("upstream")
    ]
