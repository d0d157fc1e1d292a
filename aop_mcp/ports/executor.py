"""The Executor port: runs one attempt of one task."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

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

    Optional: an executor that keeps something between attempts (a process, a connection)
    also defines `async def aclose(self) -> None` (`ClosingExecutor`). The engine calls it,
    if present, when it stops, once no attempt runs.
    """

    name: str
    #: Part of every cache key: bump it when the same `run` block would give another result.
    version: str

    async def execute(self, request: ExecutionRequest) -> TaskOutput: ...


@runtime_checkable
class KeyedExecutor(Protocol):
    """An Executor whose results depend on more than the rendered `run` block.

    The engine folds `cache_facts` into the cache key of a `cache` task before it looks the
    key up: the versions of the secrets a task uses, for instance, which the block names but
    whose values it never holds. An AttemptFailed raised here fails the attempt.
    """

    async def cache_facts(self, spec: Any) -> Mapping[str, Any]: ...


@runtime_checkable
class ClosingExecutor(Protocol):
    """An Executor with something to end when the engine stops (see `Executor`).

    `aclose` ends it and waits until it has ended; the engine logs what it raises and goes
    on closing the other executors.
    """

    async def aclose(self) -> None: ...


class SecretSource(Protocol):
    """The hub's secrets as executors see them (SecretService implements it).

    Both raise SecretNotFound for a name that is not set, and SecretKeyMismatch when the
    hub's key cannot decrypt it.
    """

    async def reveal(self, name: str) -> str: ...

    async def version(self, name: str) -> int: ...

    async def revision(self, name: str) -> str:
        """Changes whenever the secret is set, even deleted and set again to the same value:
        what cache keys take instead of the value."""
        ...
