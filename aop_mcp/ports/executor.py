"""The Executor port: runs one attempt of one task."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from aop_mcp.models import TaskError, TaskOutput


@dataclass(frozen=True, slots=True)
class ExecutionRequest:
    run_id: str
    task_id: str
    attempt: int
    spec: Any  # the task's `run` block (a pydantic model), templates already rendered
    timeout: float | None  # seconds; None means no limit
    work_root: Path  # a directory the executor may create per-attempt folders under
    output_cap: int  # bytes kept of stdout and of stderr each


class AttemptFailed(Exception):
    """Raised by an executor when an attempt fails; carries what it produced so far."""

    def __init__(self, error: TaskError, output: TaskOutput | None = None) -> None:
        super().__init__(error.message)
        self.error = error
        self.output = output


class Executor(Protocol):
    """Runs attempts of one kind of task (`run.executor`).

    `execute` returns the output on success and raises AttemptFailed otherwise. When the
    awaiting task is cancelled it must stop the work (kill the process group) before
    re-raising CancelledError.
    """

    name: str
    #: Part of every cache key: bump it when the same `run` block would give another result.
    version: str

    async def execute(self, request: ExecutionRequest) -> TaskOutput: ...
