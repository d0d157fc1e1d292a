"""What a task printed: the captured stdout and stderr of one of its attempts."""

from __future__ import annotations

from dataclasses import dataclass

from aop_mcp.errors import NotFound
from aop_mcp.models import Attempt
from aop_mcp.services.runs import RunService


class AttemptNotFound(NotFound):
    def __init__(self, run_id: str, task_id: str, number: int, attempts: int) -> None:
        super().__init__(
            f"task {task_id!r} of run {run_id!r} has no attempt {number}; "
            f"it has made {attempts} attempt(s), numbered from 1"
        )
        self.run_id = run_id
        self.task_id = task_id
        self.number = number


@dataclass(frozen=True, slots=True)
class TaskLogs:
    """The output of one attempt; `attempt` is None when the task has not been tried yet.

    A running attempt has no output yet: its text is empty until it ends.
    """

    run_id: str
    task_id: str
    attempt: Attempt | None

    @property
    def stdout(self) -> str:
        output = self.attempt.output if self.attempt else None
        return output.stdout if output else ""

    @property
    def stderr(self) -> str:
        output = self.attempt.output if self.attempt else None
        return output.stderr if output else ""


async def task_logs(
    runs: RunService, run_id: str, task_id: str, number: int | None = None
) -> TaskLogs:
    """The logs of attempt `number` of a task (its latest by default).

    Raises TaskRunNotFound, or AttemptNotFound for a number the task has not reached.
    """
    detail = await runs.task(run_id, task_id)
    if number is None:
        latest = detail.attempts[-1] if detail.attempts else None
        return TaskLogs(run_id, task_id, latest)
    for attempt in detail.attempts:
        if attempt.number == number:
            return TaskLogs(run_id, task_id, attempt)
    raise AttemptNotFound(run_id, task_id, number, len(detail.attempts))
