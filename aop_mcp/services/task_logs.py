"""What a task printed: the captured stdout and stderr of one of its attempts."""

from __future__ import annotations

from dataclasses import dataclass

from aop_mcp.errors import AttemptNotFound
from aop_mcp.models import Attempt
from aop_mcp.services.runs import RunService


@dataclass(frozen=True, slots=True)
class TaskLogs:
    """The output of one attempt; `attempt` is None when the task has not been tried yet.

    A running attempt has no output yet: its text is empty until it ends.
    """

    run_id: str
    task_id: str
    attempt: Attempt | None
    attempts: int  # how many attempts the task has made

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
        return TaskLogs(run_id, task_id, latest, len(detail.attempts))
    for attempt in detail.attempts:
        if attempt.number == number:
            return TaskLogs(run_id, task_id, attempt, len(detail.attempts))
    raise AttemptNotFound(run_id, task_id, number, len(detail.attempts))
