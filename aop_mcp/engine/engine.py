"""The engine: drives the runs it holds a lease on, one committed step at a time.

One loop owns all in-memory run state. Each turn it applies what happened since the last
turn (attempts that ended, requests from callers), dispatches ready tasks within the limits,
commits everything as one batch, then publishes the events and starts the attempts. Work is
therefore batched under load (one transaction for many transitions) and nothing is ever
announced or started before it is durable.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from aop_mcp.engine import progress
from aop_mcp.engine.clock import Clock, SystemClock
from aop_mcp.engine.dispatch import Launch, prepare_attempt, settle_cache_key
from aop_mcp.engine.ownership import Leases
from aop_mcp.engine.progress import RunState, Step
from aop_mcp.engine.queue import ReadyQueue
from aop_mcp.engine.replay import replay_dead_letter, retry_failed_tasks
from aop_mcp.errors import (
    DeadLetterReplayed,
    EngineStopped,
    NothingToRetry,
    RunFinished,
    RunNotFinished,
    RunOwnedElsewhere,
)
from aop_mcp.models import (
    Attempt,
    FailureKind,
    Owner,
    Run,
    RunLease,
    RunStatus,
    TaskError,
    TaskOutput,
    TaskRun,
    TaskStatus,
)
from aop_mcp.ports.events import EventBus, InMemoryEventBus
from aop_mcp.ports.executor import AttemptFailed, ClosingExecutor, Executor
from aop_mcp.ports.store import Store
from aop_mcp.workflow import Graph, WorkflowDocument

log = logging.getLogger(__name__)

Action = Callable[[Step], None]
QueueItem = tuple[RunState, TaskRun]


@dataclass(frozen=True, slots=True)
class EngineLimits:
    max_concurrency: int = 32
    lease_seconds: float = 30.0
    output_cap: int = 1_048_576
    work_root: Path = field(default_factory=lambda: Path("/tmp/aop-work"))


@dataclass(slots=True)
class _Outcome:
    state: RunState
    attempt: Attempt
    output: TaskOutput | None = None
    error: TaskError | None = None
    cancelled: bool = False
    cached: bool = False
    cache_key: str | None = None


class Engine:
    """Runs workflows durably. Start it, hand it runs, stop it; see the module docstring."""

    def __init__(
        self,
        store: Store,
        executors: Mapping[str, Executor],
        *,
        bus: EventBus | None = None,
        clock: Clock | None = None,
        limits: EngineLimits | None = None,
        owner: Owner | None = None,
        adopt_orphans: bool = False,
        rng: random.Random | None = None,
    ) -> None:
        self.store = store
        self.bus = bus or InMemoryEventBus()
        self.clock = clock or SystemClock()
        self.limits = limits or EngineLimits()
        self.executors = dict(executors)
        self.owner = owner or Owner.this_process()
        self._rng = rng or random.Random()
        self._runs: dict[str, RunState] = {}
        self._queue: ReadyQueue[QueueItem] = ReadyQueue()
        self._actions: list[tuple[Action, asyncio.Future[None]]] = []
        self._outcomes: list[_Outcome] = []
        self._waiters: dict[str, list[asyncio.Future[Run]]] = {}
        self._definitions: dict[tuple[str, int], tuple[WorkflowDocument, Graph]] = {}
        self._wake = asyncio.Event()
        self._executing = 0
        self._stopping = False
        self._loop_task: asyncio.Task[None] | None = None
        self.leases = Leases(self, adopt_orphans=adopt_orphans)

    # Lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        """Start the loop and lease keeping; adopt orphaned runs if configured to."""
        self.leases.register()
        self._loop_task = asyncio.create_task(self._loop(), name="aop-engine")
        await self.leases.start()

    async def stop(self) -> None:
        """Stop gracefully: running attempts are interrupted, recorded and left to resume.

        Every run this engine held is released so the next engine to start takes it over
        at once; the interrupted attempts are retried there without using up retries.
        Then each executor that keeps something between attempts is closed (`aclose`).
        """
        if self._loop_task is None:
            return
        await self.leases.stop()
        self._stopping = True
        for state in list(self._runs.values()):
            for task in state.running.values():
                task.cancel()
        await self._call(self._release_all, stopping=True)
        self._loop_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._loop_task
        self._loop_task = None
        self.leases.unregister()
        await self._close_executors()

    async def _close_executors(self) -> None:
        """`aclose` each executor once (one may serve under several names); one that fails
        is logged and the others are still closed."""
        unique = {id(executor): executor for executor in self.executors.values()}
        for executor in unique.values():
            if not isinstance(executor, ClosingExecutor):
                continue
            try:
                await executor.aclose()
            except Exception:
                log.exception("closing executor %r failed", executor.name)

    def _release_all(self, step: Step) -> None:
        self._drain_outcomes(step)
        if self._executing:
            raise _NotYet
        for state in self._runs.values():
            step.changes.released_runs.add(state.id)
        self._runs.clear()
        for waiters in self._waiters.values():
            for future in waiters:
                if not future.done():
                    future.set_exception(EngineStopped())
        self._waiters.clear()

    # Requests from services ---------------------------------------------------------

    def lease_for(self, run_id: str) -> RunLease:
        """The lease a new run is created with (`Store.create_run`): this engine drives it."""
        return RunLease(run_id, self.owner, self.leases.lease_until)

    async def submit(self, run: Run, task_runs: list[TaskRun]) -> None:
        """Drive a run that was just created with `lease_for(run.id)`.

        The lease is written with the run, in one transaction: taking it afterwards would
        leave a moment in which an engine adopting orphans could take the run first.
        """
        document, graph = await self.definition(run.workflow, run.workflow_version)
        state = RunState(run, document, graph, {t.task_id: t for t in task_runs})
        await self._call(lambda step: self._admit(step, state, {}))

    async def resume(self, run_id: str) -> None:
        """Load a run this engine holds the lease on, recovering interrupted attempts."""
        run = await self.store.get_run(run_id)
        document, graph = await self.definition(run.workflow, run.workflow_version)
        task_runs = await self.store.get_task_runs(run_id)
        interrupted = {}
        for task_run in task_runs:
            if task_run.status is TaskStatus.RUNNING:
                attempts = await self.store.get_attempts(run_id, task_run.task_id)
                interrupted[task_run.task_id] = attempts[-1]
        state = RunState(run, document, graph, {t.task_id: t for t in task_runs})
        await self._call(lambda step: self._admit(step, state, interrupted))

    async def cancel(self, run_id: str) -> Run:
        """Cancel a run: kill its running attempts, cancel what has not started.

        A run driven by another live engine is only marked; that engine cancels it.
        """
        state = self._runs.get(run_id)
        if state is None:
            run = await self.store.get_run(run_id)
            if run.status.finished:
                raise RunFinished(run_id, run.status, "cancel")
            marked = await self.store.request_cancel(run_id)
            if not await self.leases.take_over(run_id):
                return marked  # its live engine sees the mark and cancels it
            # Loaded with the mark set, the run is cancelled in the same step that
            # recovers it: its interrupted attempts are not started again first.
            await self.resume(run_id)
            return await self.wait(run_id)
        await self._call(lambda step: self._cancel(step, state))
        return state.run

    async def replay(self, dead_letter_id: str) -> Run:
        """Run a dead-lettered task again in its run; the run continues from there."""
        letter = await self.store.get_dead_letter(dead_letter_id)
        if letter.replayed_at is not None:
            raise DeadLetterReplayed(dead_letter_id)
        if letter.run_id not in self._runs:
            run = await self.store.get_run(letter.run_id)
            if not await self.leases.take_over(run.id):
                raise RunOwnedElsewhere(run.id, "another live engine")
            await self.resume(run.id)
        state = self._runs[letter.run_id]
        await self._call(lambda step: replay_dead_letter(step, state, letter))
        return state.run

    async def retry(self, run_id: str) -> Run:
        """Run the failed and cancelled tasks of a finished run again, in that run."""
        run = await self.store.get_run(run_id)
        if not run.status.finished:
            raise RunNotFinished(run_id, run.status, "retry")
        if run.status is RunStatus.SUCCEEDED:
            raise NothingToRetry(run_id)
        letters = await self.store.list_dead_letters(run_id=run_id)
        if not await self.leases.take_over(run_id):
            raise RunOwnedElsewhere(run_id, "another live engine")
        await self.resume(run_id)
        state = self._runs[run_id]
        await self._call(lambda step: retry_failed_tasks(step, state, letters))
        return state.run

    async def wait(self, run_id: str) -> Run:
        """Wait until a run this engine drives has finished, and return it."""
        if run_id not in self._runs:
            return await self.store.get_run(run_id)
        future: asyncio.Future[Run] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(run_id, []).append(future)
        return await future

    def drives(self, run_id: str) -> bool:
        """True while this engine holds and drives the run."""
        return run_id in self._runs

    async def definition(self, name: str, version: int) -> tuple[WorkflowDocument, Graph]:
        """The parsed document and graph of a workflow version (cached: they never change)."""
        key = (name, version)
        cached = self._definitions.get(key)
        if cached is None:
            stored = await self.store.get_workflow(name, version)
            document = WorkflowDocument.model_validate(stored.document)
            cached = self._definitions[key] = (document, Graph(document))
        return cached

    # The loop ------------------------------------------------------------------------

    async def _call(self, action: Action, *, stopping: bool = False) -> None:
        """Apply `action` inside the loop's next turn; return once it is committed.

        Refused once the engine stops, except for the stop's own last action.
        """
        if self._loop_task is None or (self._stopping and not stopping):
            raise EngineStopped
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._actions.append((action, future))
        self._wake.set()
        await future

    async def _loop(self) -> None:
        while True:
            await self._wait_for_work()
            self._wake.clear()
            try:
                await self._turn()
            except Exception:
                log.exception("engine turn failed; its runs will be reloaded from the store")

    async def _wait_for_work(self) -> None:
        if self._wake.is_set():
            return
        due = self._queue.next_due()
        if due is None:
            await self._wake.wait()
            return
        woken = asyncio.ensure_future(self._wake.wait())
        timer = asyncio.ensure_future(self.clock.sleep_until(due))
        await asyncio.wait((woken, timer), return_when=asyncio.FIRST_COMPLETED)
        woken.cancel()
        timer.cancel()

    async def _turn(self) -> None:
        step = Step(now=self.clock.now())
        actions: list[tuple[Action, asyncio.Future[None]]] = []
        launches: list[Launch] = []
        try:
            actions = self._apply_actions(step)
            self._drain_outcomes(step)
            launches = self._dispatch(step)
            for state in step.touched:
                progress.finish_if_done(step, state)
            events = await self.store.commit(step.changes) if step.changes else []
        except Exception as exc:
            self._abandon(step, launches, actions, exc)
            raise
        self.bus.publish(events)
        for _, future in actions:
            if not future.done():
                future.set_result(None)
        self._finish_runs(step)
        for launch in launches:
            self._launch(launch)

    def _apply_actions(self, step: Step) -> list[tuple[Action, asyncio.Future[None]]]:
        applied, waiting = [], []
        for action, future in self._actions:
            try:
                action(step)
            except _NotYet:
                waiting.append((action, future))
                continue
            except Exception as exc:
                future.set_exception(exc)
                continue
            applied.append((action, future))
        self._actions = waiting
        return applied

    def _abandon(
        self,
        step: Step,
        launches: list[Launch],
        actions: list[tuple[Action, asyncio.Future[None]]],
        exc: Exception,
    ) -> None:
        """The step was not committed, so memory ran ahead of the store for the runs it
        touched: forget them and reload them from the store."""
        for _, future in actions:
            if not future.done():
                future.set_exception(exc)
        for state in step.touched:
            self._forget(state)
            self.leases.reload_later(state.id)
        self._executing -= len(launches)

    def _forget(self, state: RunState) -> None:
        if self._runs.get(state.id) is state:
            del self._runs[state.id]
        for task in state.running.values():
            task.cancel()

    def _finish_runs(self, step: Step) -> None:
        for state in step.finished:
            if self._runs.get(state.id) is state:
                del self._runs[state.id]
            run_dir = self.limits.work_root / state.id  # executors leave empty folders
            if run_dir.exists():
                shutil.rmtree(run_dir, ignore_errors=True)
            for future in self._waiters.pop(state.id, []):
                if not future.done():
                    future.set_result(state.run)

    # Admission, cancellation ---------------------------------------------------------

    def _admit(self, step: Step, state: RunState, interrupted: dict[str, Attempt]) -> None:
        self._runs[state.id] = state
        step.touched.add(state)
        error = TaskError(FailureKind.INTERRUPTED, "the engine stopped while this attempt ran")
        for _task_id, attempt in interrupted.items():
            progress.attempt_failed(step, state, attempt, error, None, self._rng)
        for task_run in state.tasks.values():
            if task_run.status is TaskStatus.READY:
                step.ready.append((state, task_run.task_id))
        progress.settle(step, state)
        if state.run.cancel_requested and not state.run.status.finished:
            self._cancel(step, state)

    def _cancel(self, step: Step, state: RunState) -> None:
        if state.cancelling or state.run.status.finished:
            return
        state.cancelling = True
        step.touched.add(state)
        for task_id, task_run in state.tasks.items():
            if task_run.status in (TaskStatus.PENDING, TaskStatus.READY):
                progress.cancel_task(step, state, task_id)
        for task in state.running.values():
            task.cancel()

    # Dispatch ------------------------------------------------------------------------

    def _dispatch(self, step: Step) -> list[Launch]:
        """Start as many ready tasks as the limits allow, in priority order."""
        launches: list[Launch] = []
        self._queue.release_due(step.now)
        while True:
            self._enqueue(step)
            free = self.limits.max_concurrency - self._executing - len(launches)
            if free <= 0 or self._stopping:
                break
            items = self._queue.pop(free, self._may_start)
            if not items:
                break
            for state, task_run in items:
                if not self._current(state, task_run):
                    continue
                launch = prepare_attempt(self, step, state, task_run.task_id)
                if launch is None:
                    state.active -= 1  # settled without an attempt: give the slot back
                else:
                    launches.append(launch)
        self._executing += len(launches)
        return launches

    def _enqueue(self, step: Step) -> None:
        queued: set[int] = set()
        for state, task_id in step.ready:
            task_run = state.tasks[task_id]
            # A task marked ready twice in one step is still one record: queue it once.
            if task_run.status is TaskStatus.READY and id(task_run) not in queued:
                queued.add(id(task_run))
                ready_at = task_run.ready_at or step.now
                self._queue.push(
                    (state, task_run), task_run.priority, ready_at, task_run.next_attempt_at
                )
        step.ready.clear()

    def _current(self, state: RunState, task_run: TaskRun) -> bool:
        """False for a queue entry that went stale (the task changed, or its run left)."""
        return (
            self._runs.get(state.id) is state
            and state.tasks[task_run.task_id] is task_run
            and not state.cancelling
        )

    def _may_start(self, item: QueueItem) -> bool:
        """Whether an item may start now; an accepted one holds a slot of its run."""
        state, task_run = item
        if not self._current(state, task_run):
            return True  # taken off the queue, then dropped by _dispatch
        limit = state.document.max_parallel
        if limit is not None and state.active >= limit:
            return False
        state.active += 1
        return True

    # Attempts ------------------------------------------------------------------------

    def _launch(self, launch: Launch) -> None:
        task = asyncio.create_task(self._execute(launch))
        launch.state.running[launch.attempt.task_id] = task

    async def _execute(self, launch: Launch) -> None:
        outcome = _Outcome(launch.state, launch.attempt, cache_key=launch.cache_key)
        try:
            cached = None
            if launch.cache_key is not None:
                key = await settle_cache_key(launch, launch.cache_key)
                outcome.cache_key = key
                cached = await self.store.get_cached_output(key, launch.cache_not_before)
            if cached is not None:
                outcome.output = replace(cached, attempt=launch.attempt.number, duration=0.0)
                outcome.cached = True
            else:
                outcome.output = await launch.executor.execute(launch.request)
        except AttemptFailed as failure:
            outcome.error, outcome.output = failure.error, failure.output
        except asyncio.CancelledError:
            outcome.cancelled = True
        except Exception as exc:  # an executor bug must fail the attempt, not the engine
            log.exception("executor %r raised", launch.executor.name)
            outcome.error = TaskError(FailureKind.ERROR, f"executor crashed: {exc!r}")
        self._outcomes.append(outcome)
        self._wake.set()

    def _drain_outcomes(self, step: Step) -> None:
        outcomes, self._outcomes = self._outcomes, []
        for outcome in outcomes:
            self._executing -= 1
            state = outcome.state
            state.running.pop(outcome.attempt.task_id, None)
            if self._runs.get(state.id) is not state:
                continue  # the run was forgotten after a failed commit; it reloads itself
            state.active -= 1
            step.touched.add(state)
            self._record(step, outcome)

    def _record(self, step: Step, outcome: _Outcome) -> None:
        state, attempt = outcome.state, outcome.attempt
        if outcome.cancelled and state.cancelling:
            progress.attempt_cancelled(step, state, attempt)
        elif outcome.cancelled:
            error = TaskError(FailureKind.INTERRUPTED, "the engine stopped while this attempt ran")
            progress.attempt_failed(step, state, attempt, error, None, self._rng, False)
        elif outcome.error is not None:
            progress.attempt_failed(step, state, attempt, outcome.error, outcome.output, self._rng)
        else:
            assert outcome.output is not None
            progress.task_succeeded(
                step, state, attempt, outcome.output, outcome.cache_key, outcome.cached
            )


class _NotYet(Exception):
    """An action that must wait for running attempts to end; it is tried again next turn."""
