"""Starting, watching, listing and cancelling runs."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from aop_mcp.engine import Engine
from aop_mcp.engine.clock import Clock
from aop_mcp.models import (
    Attempt,
    NewEvent,
    Run,
    RunStatus,
    TaskRun,
    TaskStatus,
    new_id,
)
from aop_mcp.ports.store import Store
from aop_mcp.workflow import WorkflowDocument, resolve_inputs

#: How often `wait` looks at a run that another process drives.
_FOREIGN_POLL_SECONDS = 0.5


@dataclass(frozen=True, slots=True)
class RunDetail:
    """A run with its task runs, as `aop runs show` and `run_status` present it."""

    run: Run
    tasks: list[TaskRun]


@dataclass(frozen=True, slots=True)
class RunPage:
    runs: list[Run]
    next_cursor: str | None  # pass as `cursor` for the next page; None: this is the last


@dataclass(frozen=True, slots=True)
class TaskDetail:
    task: TaskRun
    attempts: list[Attempt]


class RunService:
    def __init__(self, store: Store, engine: Engine, clock: Clock) -> None:
        self._store = store
        self._engine = engine
        self._clock = clock

    async def start(
        self,
        workflow: str,
        inputs: Mapping[str, Any] | None = None,
        *,
        idempotency_key: str | None = None,
        version: int | None = None,
    ) -> Run:
        """Start a run of a stored workflow (its latest version unless `version` is given).

        With an `idempotency_key` already used, the run it started is returned instead and
        nothing new is started. Raises WorkflowNotFound or InvalidInputs.
        """
        run, _ = await self.start_or_get(
            workflow, inputs, idempotency_key=idempotency_key, version=version
        )
        return run

    async def start_or_get(
        self,
        workflow: str,
        inputs: Mapping[str, Any] | None = None,
        *,
        idempotency_key: str | None = None,
        version: int | None = None,
    ) -> tuple[Run, bool]:
        """`start`, also telling whether this call started the run (False: the key's run)."""
        stored = await self._store.get_workflow(workflow, version)
        document, graph = await self._engine.definition(stored.name, stored.version)
        resolved = resolve_inputs(document, inputs or {})
        now = self._clock.now()
        run = Run(
            id=new_id("run"),
            workflow=stored.name,
            workflow_version=stored.version,
            status=RunStatus.PENDING,
            inputs=resolved,
            created_at=now,
            idempotency_key=idempotency_key,
        )
        task_runs = [
            TaskRun(run.id, task_id, TaskStatus.PENDING, priority=document.task(task_id).priority)
            for task_id in graph.order
        ]
        created_event = NewEvent(run.id, "run.created", now, data={"workflow": stored.name})
        run, created = await self._store.create_run(
            run, task_runs, [created_event], self._engine.lease_for(run.id)
        )
        if created:
            await self._engine.submit(run, task_runs)
        return run, created

    async def get(self, run_id: str) -> RunDetail:
        """A run and its task runs; raises RunNotFound."""
        # Both reads queue at once: one wait for the database thread instead of two.
        run, tasks = await asyncio.gather(
            self._store.get_run(run_id), self._store.get_task_runs(run_id)
        )
        return RunDetail(run, tasks)

    async def list(
        self,
        *,
        workflow: str | None = None,
        statuses: Sequence[RunStatus] | None = None,
        limit: int = 50,
        before: str | None = None,
    ) -> list[Run]:
        """Runs, newest first, optionally filtered; page with `before` (a run id)."""
        return await self._store.list_runs(
            workflow=workflow, statuses=statuses, limit=limit, before=before
        )

    async def page(
        self,
        *,
        workflow: str | None = None,
        statuses: Sequence[RunStatus] | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> RunPage:
        """One page of `list`; `next_cursor` is None on the last page."""
        # One run more than asked tells whether another page exists.
        runs = await self.list(workflow=workflow, statuses=statuses, limit=limit + 1, before=cursor)
        page = runs[:limit]
        return RunPage(page, page[-1].id if len(runs) > limit else None)

    async def task(self, run_id: str, task_id: str) -> TaskDetail:
        """One task run with all its attempts; raises TaskRunNotFound."""
        task_run = await self._store.get_task_run(run_id, task_id)
        return TaskDetail(task_run, await self._store.get_attempts(run_id, task_id))

    async def document(self, run: Run) -> WorkflowDocument:
        """The parsed workflow version a run runs (the engine's cached copy)."""
        document, _graph = await self._engine.definition(run.workflow, run.workflow_version)
        return document

    async def attempts(self, run_id: str) -> list[Attempt]:
        """Every attempt of every task of a run, by start time; raises RunNotFound."""
        return await self._store.get_run_attempts(run_id)

    async def cancel(self, run_id: str) -> Run:
        """Cancel a run; raises RunFinished if it has already ended."""
        return await self._engine.cancel(run_id)

    async def retry(self, run_id: str) -> Run:
        """Run the failed and cancelled tasks of a finished run again (fresh retry budgets).

        Tasks skipped because of them run too; the run is `running` again. Raises
        RunNotFinished while it runs, NothingToRetry if it succeeded.
        """
        return await self._engine.retry(run_id)

    async def wait(self, run_id: str, timeout: float | None = None) -> Run:  # noqa: ASYNC109
        """Wait until the run ends (or `timeout` seconds pass) and return it as it is then.

        Unlike a caller's own deadline, reaching `timeout` is not an error: the caller gets
        the run still running, as `run_wait` promises.
        """
        try:
            async with asyncio.timeout(timeout):
                return await self._wait(run_id)
        except TimeoutError:
            return await self._store.get_run(run_id)

    async def _wait(self, run_id: str) -> Run:
        while True:
            if self._engine.drives(run_id):
                return await self._engine.wait(run_id)
            run = await self._store.get_run(run_id)
            if run.status.finished:
                return run
            # Driven by another process: its events do not reach this one's bus.
            await asyncio.sleep(_FOREIGN_POLL_SECONDS)
