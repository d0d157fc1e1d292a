"""The Store contract: every Store implementation passes these tests (the huey pattern).

A test module subclasses `StoreContract` and provides a `store` fixture that yields an
opened store and closes it afterwards.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from aop_mcp.errors import (
    AgentNotFound,
    DeadLetterNotFound,
    InvalidQuery,
    RunNotFound,
    SecretNotFound,
    StoreError,
    TaskRunNotFound,
    TokenNotFound,
    WorkflowNotFound,
)
from aop_mcp.models import (
    Agent,
    AgentHealth,
    AgentKind,
    AgentVersion,
    Attempt,
    AttemptStatus,
    CacheEntry,
    Changes,
    DeadLetter,
    FailureKind,
    NewEvent,
    Owner,
    Run,
    RunLease,
    RunStatus,
    Secret,
    TaskError,
    TaskOutput,
    TaskRun,
    TaskStatus,
    Token,
)
from aop_mcp.ports.store import Store

READY = TaskStatus.READY
ENGINE = Owner("engine_a", "host-a", 101)
OTHER_ENGINE = Owner("engine_b", "host-b", 202)


def a_run(
    run_id: str = "run_1",
    *,
    workflow: str = "wf",
    created_at: float = 100.0,
    status: RunStatus = RunStatus.PENDING,
    key: str | None = None,
) -> Run:
    return Run(run_id, workflow, 1, status, {"n": 1}, created_at, idempotency_key=key)


def task_runs_of(run_id: str, *task_ids: str) -> list[TaskRun]:
    return [TaskRun(run_id, task_id, TaskStatus.PENDING) for task_id in task_ids]


def an_attempt(run_id: str, task_id: str, number: int = 1, worker: str = "engine_a") -> Attempt:
    return Attempt(run_id, task_id, number, AttemptStatus.RUNNING, worker, 110.0, 120.0)


async def given_run(
    store: Store, run_id: str = "run_1", *task_ids: str, created_at: float = 100.0, **kw: object
) -> Run:
    run = a_run(run_id, created_at=created_at, **kw)  # type: ignore[arg-type]
    created, _ = await store.create_run(run, task_runs_of(run_id, *(task_ids or ("a",))), [])
    return created


def an_attempt_at(
    run_id: str, task_id: str, number: int, started_at: float, agent: str | None = None
) -> Attempt:
    """A finished attempt whose output names `agent` (no output at all when None)."""
    output = None if agent is None else TaskOutput(0, f"by {agent}", attempt=number, agent=agent)
    status = AttemptStatus.SUCCEEDED
    return Attempt(run_id, task_id, number, status, "w", started_at, None, started_at + 1, output)


async def given_finished(store: Store, run_id: str, finished: dict[str, float | None]) -> None:
    """A run whose task runs finished at the given times (None: still running)."""
    statuses = [TaskStatus.SUCCEEDED, TaskStatus.FAILED, TaskStatus.SKIPPED, TaskStatus.CANCELLED]
    await given_run(store, run_id, *finished)
    changes = Changes()
    for i, (task_id, at) in enumerate(finished.items()):
        status = TaskStatus.RUNNING if at is None else statuses[i % len(statuses)]
        changes.put_task_run(TaskRun(run_id, task_id, status, finished_at=at))
    await store.commit(changes)


def a_dead_letter(letter_id: str, run_id: str = "run_1", **kw: object) -> DeadLetter:
    error = TaskError(FailureKind.EXIT_CODE, "exit 1", 1)
    return DeadLetter(letter_id, run_id, "a", 3, error, kw.pop("created_at", 200.0), **kw)  # type: ignore[arg-type]


async def given_dead_letters(store: Store) -> None:
    """dl_1 to dl_5 (dl_2 replayed; dl_3 and dl_4 at the same time; dl_3, dl_5 of run_2)."""
    await given_run(store, "run_1", "a")
    await given_run(store, "run_2", "a")
    changes = Changes()
    for letter in [
        a_dead_letter("dl_1", created_at=1.0),
        a_dead_letter("dl_2", created_at=2.0, replayed_at=9.0),
        a_dead_letter("dl_4", created_at=3.0),
        a_dead_letter("dl_3", "run_2", created_at=3.0),
        a_dead_letter("dl_5", "run_2", created_at=5.0),
    ]:
        changes.put_dead_letter(letter)
    await store.commit(changes)


def letter_ids(letters: list[DeadLetter]) -> list[str]:
    return [letter.id for letter in letters]


def a_token(token_id: str = "tok_1", *, created_at: float = 100.0, **kw: object) -> Token:
    return Token(token_id, f"name of {token_id}", "operator", f"hash-{token_id}", created_at, **kw)  # type: ignore[arg-type]


def an_agent(name: str = "summarizer", *, version: int = 1, **kw: object) -> Agent:
    config = {"url": "http://127.0.0.1:9/mcp", "tool": "summarize", "headers": {"X": "1"}}
    fields: dict[str, object] = {
        "name": name,
        "kind": AgentKind.MCP,
        "capabilities": ("summarize", "translate"),
        "max_concurrency": 2,
        "weight": 3,
        "config": config,
        "version": version,
        "created_at": 100.0,
        "updated_at": 100.0 + version,
    }
    return Agent(**(fields | kw))  # type: ignore[arg-type]


def version_of(agent: Agent) -> AgentVersion:
    return AgentVersion(
        agent.name,
        agent.version,
        agent.kind,
        agent.capabilities,
        agent.max_concurrency,
        agent.weight,
        agent.config,
        agent.updated_at,
    )


@pytest.mark.anyio
class StoreContract:
    # Lifecycle ---------------------------------------------------------------------

    async def test_open_and_close_can_be_called_twice(self, store: Store) -> None:
        await store.open()
        await store.close()
        await store.close()
        await store.open()
        assert await store.list_workflows() == []

    async def test_closed_store_refuses_calls_with_store_error(self, store: Store) -> None:
        await store.close()
        with pytest.raises(StoreError):
            await store.get_run("run_1")
        with pytest.raises(StoreError):
            await store.commit(Changes(events=[NewEvent("run_1", "x", 1.0)]))

    # Workflows ---------------------------------------------------------------------

    async def test_first_save_of_a_workflow_is_version_one(self, store: Store) -> None:
        saved, created = await store.save_workflow("wf", {"tasks": [1]}, "d1", 10.0)
        assert created
        assert (saved.name, saved.version, saved.digest, saved.created_at) == ("wf", 1, "d1", 10.0)
        assert await store.get_workflow("wf") == saved

    async def test_same_digest_returns_the_latest_version_unchanged(self, store: Store) -> None:
        first, _ = await store.save_workflow("wf", {"v": 1}, "d1", 10.0)
        again, created = await store.save_workflow("wf", {"v": 1}, "d1", 20.0)
        assert not created
        assert again == first

    async def test_changed_digest_makes_the_next_version_and_keeps_old_ones(
        self, store: Store
    ) -> None:
        v1, _ = await store.save_workflow("wf", {"v": 1}, "d1", 10.0)
        v2, created = await store.save_workflow("wf", {"v": 2}, "d2", 20.0)
        assert created
        assert v2.version == 2
        assert await store.get_workflow("wf") == v2
        assert await store.get_workflow("wf", 1) == v1
        v3, created = await store.save_workflow("wf", {"v": 1}, "d1", 30.0)
        assert (v3.version, created) == (3, True)

    async def test_list_workflows_gives_the_latest_of_each_by_name(self, store: Store) -> None:
        await store.save_workflow("zeta", {"v": 1}, "z1", 10.0)
        await store.save_workflow("alpha", {"v": 1}, "a1", 11.0)
        await store.save_workflow("alpha", {"v": 2}, "a2", 12.0)
        listed = await store.list_workflows()
        assert [(w.name, w.version) for w in listed] == [("alpha", 2), ("zeta", 1)]

    async def test_missing_workflow_or_version_raises_workflow_not_found(
        self, store: Store
    ) -> None:
        with pytest.raises(WorkflowNotFound):
            await store.get_workflow("nope")
        await store.save_workflow("wf", {}, "d1", 10.0)
        with pytest.raises(WorkflowNotFound) as caught:
            await store.get_workflow("wf", 2)
        assert caught.value.version == 2

    async def test_documents_come_back_as_json(self, store: Store) -> None:
        saved, _ = await store.save_workflow("wf", {"pair": (1, 2), "n": None}, "d1", 1.0)
        assert saved.document == {"pair": [1, 2], "n": None}
        assert (await store.get_workflow("wf")).document == {"pair": [1, 2], "n": None}

    # Runs --------------------------------------------------------------------------

    async def test_created_run_reads_back_with_task_runs_in_creation_order(
        self, store: Store
    ) -> None:
        run = a_run(key="k1")
        events = [NewEvent(run.id, "run.created", 100.0, data={"by": "test"})]
        created, is_new = await store.create_run(run, task_runs_of(run.id, "z", "a", "m"), events)
        assert is_new
        assert created == run
        assert await store.get_run(run.id) == run
        assert [t.task_id for t in await store.get_task_runs(run.id)] == ["z", "a", "m"]
        listed = await store.list_events(run_id=run.id)
        assert [(e.type, e.data) for e in listed] == [("run.created", {"by": "test"})]

    async def test_same_idempotency_key_returns_the_same_run(self, store: Store) -> None:
        first = await given_run(store, "run_1", "a", key="k1")
        again, created = await store.create_run(
            a_run("run_2", key="k1"),
            task_runs_of("run_2", "b"),
            [NewEvent("run_2", "run.created", 1.0)],
        )
        assert not created
        assert again == first
        with pytest.raises(RunNotFound):
            await store.get_run("run_2")
        assert await store.list_events() == []

    async def test_creating_a_run_with_a_used_id_fails_and_writes_nothing(
        self, store: Store
    ) -> None:
        original = await given_run(store, "run_1", "a")
        with pytest.raises(StoreError):
            await store.create_run(
                a_run("run_1", workflow="other"),
                task_runs_of("run_1", "b"),
                [NewEvent("run_1", "run.created", 1.0)],
            )
        assert await store.get_run("run_1") == original
        assert [t.task_id for t in await store.get_task_runs("run_1")] == ["a"]
        assert await store.list_events() == []

    async def test_missing_run_raises_run_not_found(self, store: Store) -> None:
        with pytest.raises(RunNotFound):
            await store.get_run("nope")
        with pytest.raises(RunNotFound):
            await store.get_task_runs("nope")
        with pytest.raises(RunNotFound):
            await store.request_cancel("nope")
        with pytest.raises(RunNotFound):
            await store.acquire_run("nope", ENGINE, 1.0, None)

    async def test_missing_task_run_raises_task_run_not_found(self, store: Store) -> None:
        await given_run(store, "run_1", "a")
        with pytest.raises(TaskRunNotFound):
            await store.get_task_run("run_1", "b")
        assert await store.get_attempts("run_1", "b") == []

    async def test_list_runs_is_newest_first_and_filters(self, store: Store) -> None:
        await given_run(store, "run_1", created_at=1.0)
        await given_run(store, "run_2", created_at=2.0, workflow="other")
        await given_run(store, "run_3", created_at=3.0, status=RunStatus.RUNNING)
        await given_run(store, "run_4", created_at=4.0, status=RunStatus.SUCCEEDED)

        async def ids(**kw: object) -> list[str]:
            return [r.id for r in await store.list_runs(**kw)]  # type: ignore[arg-type]

        assert await ids() == ["run_4", "run_3", "run_2", "run_1"]
        assert await ids(workflow="wf") == ["run_4", "run_3", "run_1"]
        assert await ids(statuses=[RunStatus.PENDING, RunStatus.RUNNING]) == [
            "run_3",
            "run_2",
            "run_1",
        ]
        assert await ids(workflow="other", statuses=[RunStatus.RUNNING]) == []
        assert await ids(limit=2) == ["run_4", "run_3"]

    async def test_list_runs_pages_with_before_even_when_times_tie(self, store: Store) -> None:
        for run_id, at in [("run_a", 5.0), ("run_b", 5.0), ("run_c", 5.0), ("run_0", 9.0)]:
            await given_run(store, run_id, created_at=at)
        first = await store.list_runs(limit=2)
        assert [r.id for r in first] == ["run_0", "run_c"]
        second = await store.list_runs(limit=2, before=first[-1].id)
        assert [r.id for r in second] == ["run_b", "run_a"]
        assert await store.list_runs(limit=2, before="run_a") == []
        with pytest.raises(RunNotFound):
            await store.list_runs(before="nope")

    async def test_list_runs_in_several_statuses_pages_in_one_newest_first_order(
        self, store: Store
    ) -> None:
        pending, running = RunStatus.PENDING, RunStatus.RUNNING
        for run_id, at, status, workflow in [
            ("run_a", 1.0, pending, "wf"),
            ("run_b", 2.0, running, "wf"),
            ("run_c", 2.0, pending, "wf"),
            ("run_d", 3.0, RunStatus.SUCCEEDED, "wf"),
            ("run_e", 4.0, running, "wf"),
            ("run_f", 5.0, pending, "other"),
        ]:
            await given_run(store, run_id, created_at=at, status=status, workflow=workflow)

        async def ids(**kw: object) -> list[str]:
            return [r.id for r in await store.list_runs(**kw)]  # type: ignore[arg-type]

        active = [running, pending, running]  # a status named twice is listed once
        assert await ids(statuses=active, limit=2) == ["run_f", "run_e"]
        assert await ids(statuses=active, limit=2, before="run_e") == ["run_c", "run_b"]
        assert await ids(statuses=active, limit=2, before="run_b") == ["run_a"]
        assert await ids(statuses=active, workflow="wf") == ["run_e", "run_c", "run_b", "run_a"]
        assert await ids(statuses=active, workflow="wf", before="run_d") == [
            "run_c",
            "run_b",
            "run_a",
        ]
        assert await ids(statuses=[pending], workflow="wf", limit=1, before="run_c") == ["run_a"]
        assert await ids(statuses=active, limit=0) == []
        assert await ids(statuses=[]) == []

    async def test_request_cancel_marks_an_unfinished_run(self, store: Store) -> None:
        await given_run(store, "run_1")
        marked = await store.request_cancel("run_1")
        assert marked.cancel_requested
        assert (await store.get_run("run_1")).cancel_requested

    async def test_request_cancel_leaves_a_finished_run_as_it_is(self, store: Store) -> None:
        done = await given_run(store, "run_1", status=RunStatus.SUCCEEDED)
        assert await store.request_cancel("run_1") == done

    # Commit ------------------------------------------------------------------------

    async def test_commit_replaces_records_and_returns_events_in_order(self, store: Store) -> None:
        run = await given_run(store, "run_1", "a")
        changes = Changes()
        changes.put_run(replace(run, status=RunStatus.RUNNING, started_at=1.0))
        changes.put_task_run(TaskRun("run_1", "a", TaskStatus.RUNNING, attempts=1, priority=5))
        changes.put_attempt(an_attempt("run_1", "a"))
        changes.emit(NewEvent("run_1", "task.started", 1.0, "a", {"attempt": 1}))
        changes.emit(NewEvent("run_1", "attempt.started", 1.5, "a"))
        events = await store.commit(changes)
        assert [e.type for e in events] == ["task.started", "attempt.started"]
        assert events[0].seq < events[1].seq
        assert events == await store.list_events(run_id="run_1")
        assert (await store.get_run("run_1")).status is RunStatus.RUNNING
        task_run = await store.get_task_run("run_1", "a")
        assert (task_run.status, task_run.attempts, task_run.priority) == ("running", 1, 5)
        assert await store.get_attempts("run_1", "a") == [an_attempt("run_1", "a")]

    async def test_commit_adds_task_runs_after_the_existing_ones(self, store: Store) -> None:
        await given_run(store, "run_1", "b", "a")
        changes = Changes()
        changes.put_task_run(TaskRun("run_1", "fallback", TaskStatus.READY))
        changes.put_task_run(TaskRun("run_1", "b", TaskStatus.SKIPPED, skip_reason="why"))
        await store.commit(changes)
        task_runs = await store.get_task_runs("run_1")
        assert [t.task_id for t in task_runs] == ["b", "a", "fallback"]
        assert task_runs[0].skip_reason == "why"

    async def test_outputs_and_errors_round_trip(self, store: Store) -> None:
        await given_run(store, "run_1", "a")
        output = TaskOutput(0, "out", "err", {"k": (1, 2)}, 1.5, 2, True, False, 4096)
        error = TaskError(FailureKind.TIMEOUT, "too slow", None)
        full = TaskRun(
            run_id="run_1",
            task_id="a",
            status=TaskStatus.FAILED,
            priority=3,
            attempts=2,
            failures=1,
            interruptions=1,
            ready_at=1.0,
            next_attempt_at=2.0,
            started_at=3.0,
            finished_at=4.0,
            output=output,
            error=error,
            skip_reason="skip",
            recovered_by="b",
            cached=True,
        )
        attempt = Attempt("run_1", "a", 2, AttemptStatus.FAILED, "w", 1.0, 2.0, 3.0, output, error)
        await store.commit(Changes(task_runs={("run_1", "a"): full}))
        await store.commit(Changes(attempts={("run_1", "a", 2): attempt}))
        expected_output = TaskOutput(0, "out", "err", {"k": [1, 2]}, 1.5, 2, True, False, 4096)
        got = await store.get_task_run("run_1", "a")
        assert got == replace(full, output=expected_output)
        (got_attempt,) = await store.get_attempts("run_1", "a")
        assert got_attempt == replace(attempt, output=expected_output)

    async def test_failing_commit_writes_nothing(self, store: Store) -> None:
        await given_run(store, "run_1", "a")
        changes = Changes()
        changes.put_task_run(TaskRun("run_1", "a", TaskStatus.RUNNING))
        changes.put_dead_letter(a_dead_letter("dl_1"))
        changes.cache["key"] = CacheEntry(TaskOutput(stdout="cached"), created_at=1.0)
        changes.emit(NewEvent("run_1", "task.started", 1.0, "a"))
        changes.put_attempt(an_attempt("run_1", "no-such-task"))
        with pytest.raises(StoreError):
            await store.commit(changes)
        assert (await store.get_task_run("run_1", "a")).status is TaskStatus.PENDING
        assert await store.list_dead_letters(include_replayed=True) == []
        assert await store.get_cached_output("key") is None
        assert await store.list_events() == []

    async def test_commit_of_records_for_an_unknown_run_fails(self, store: Store) -> None:
        with pytest.raises(StoreError):
            await store.commit(Changes(events=[NewEvent("nope", "x", 1.0)]))
        with pytest.raises(StoreError):
            await store.commit(Changes(task_runs={("nope", "a"): TaskRun("nope", "a", READY)}))

    async def test_store_works_after_a_failing_commit(self, store: Store) -> None:
        await given_run(store, "run_1", "a")
        with pytest.raises(StoreError):
            await store.commit(Changes(attempts={("run_1", "x", 1): an_attempt("run_1", "x")}))
        events = await store.commit(Changes(events=[NewEvent("run_1", "ok", 1.0)]))
        assert [e.type for e in events] == ["ok"]

    async def test_empty_commit_returns_no_events(self, store: Store) -> None:
        assert await store.commit(Changes()) == []

    async def test_run_with_an_idempotency_key_used_by_another_run_fails(
        self, store: Store
    ) -> None:
        await given_run(store, "run_1", key="k1")
        run_2 = await given_run(store, "run_2")
        with pytest.raises(StoreError):
            await store.commit(Changes(runs={"run_2": replace(run_2, idempotency_key="k1")}))
        assert (await store.get_run("run_2")).idempotency_key is None

    # Events ------------------------------------------------------------------------

    async def test_events_page_by_seq_and_filter_by_run(self, store: Store) -> None:
        await given_run(store, "run_1")
        await given_run(store, "run_2")
        for i in range(3):
            events = [NewEvent("run_1", f"one.{i}", float(i)), NewEvent("run_2", f"two.{i}", 1.0)]
            await store.commit(Changes(events=events))
        everything = await store.list_events()
        seqs = [e.seq for e in everything]
        assert seqs == sorted(seqs)
        assert len(set(seqs)) == 6
        assert [e.type for e in await store.list_events(run_id="run_2")] == [
            "two.0",
            "two.1",
            "two.2",
        ]
        after = everything[1].seq
        assert await store.list_events(after=after, limit=2) == everything[2:4]
        assert [e.type for e in await store.list_events(run_id="run_1", after=after)] == [
            "one.1",
            "one.2",
        ]

    async def test_event_seq_keeps_increasing_after_a_failed_commit(self, store: Store) -> None:
        await given_run(store, "run_1", "a")
        (first,) = await store.commit(Changes(events=[NewEvent("run_1", "x", 1.0)]))
        with pytest.raises(StoreError):
            await store.commit(
                Changes(
                    events=[NewEvent("run_1", "y", 1.0)],
                    attempts={("run_1", "nope", 1): an_attempt("run_1", "nope")},
                )
            )
        (second,) = await store.commit(Changes(events=[NewEvent("run_1", "z", 1.0)]))
        assert second.seq > first.seq
        assert [e.type for e in await store.list_events()] == ["x", "z"]

    # Leases ------------------------------------------------------------------------

    async def test_a_run_created_with_a_lease_is_never_without_an_owner(self, store: Store) -> None:
        run = a_run("run_1", key="k1")
        lease = RunLease("run_1", ENGINE, 50.0)
        await store.create_run(run, task_runs_of("run_1", "a"), [], lease)
        assert await store.active_runs() == [(run, lease)]
        assert not await store.acquire_run("run_1", OTHER_ENGINE, 60.0, None)
        # An idempotent repeat writes no lease of its own.
        other = RunLease("run_2", OTHER_ENGINE, 60.0)
        await store.create_run(a_run("run_2", key="k1"), task_runs_of("run_2", "a"), [], other)
        assert await store.active_runs() == [(run, lease)]

    async def test_acquire_run_takes_a_run_nobody_holds(self, store: Store) -> None:
        await given_run(store, "run_1")
        assert await store.acquire_run("run_1", ENGINE, 50.0, None)
        assert await store.active_runs() == [
            (await store.get_run("run_1"), RunLease("run_1", ENGINE, 50.0))
        ]

    async def test_acquire_run_fails_when_the_lease_is_not_the_expected_one(
        self, store: Store
    ) -> None:
        await given_run(store, "run_1")
        assert await store.acquire_run("run_1", ENGINE, 50.0, None)
        assert not await store.acquire_run("run_1", OTHER_ENGINE, 60.0, None)
        stale = RunLease("run_1", ENGINE, 49.0)
        assert not await store.acquire_run("run_1", OTHER_ENGINE, 60.0, stale)
        current = RunLease("run_1", ENGINE, 50.0)
        assert await store.acquire_run("run_1", OTHER_ENGINE, 60.0, current)
        (_, lease), *_ = await store.active_runs()
        assert lease == RunLease("run_1", OTHER_ENGINE, 60.0)

    async def test_renew_leases_extends_only_the_owners_runs_and_running_attempts(
        self, store: Store
    ) -> None:
        for run_id in ("run_1", "run_2", "run_3"):
            await given_run(store, run_id, "a")
        await store.acquire_run("run_1", ENGINE, 10.0, None)
        await store.acquire_run("run_2", ENGINE, 10.0, None)
        await store.acquire_run("run_3", OTHER_ENGINE, 10.0, None)
        finished = Attempt("run_1", "a", 1, AttemptStatus.FAILED, ENGINE.id, 1.0, 10.0, 2.0)
        changes = Changes()
        changes.put_attempt(finished)
        changes.put_attempt(an_attempt("run_1", "a", 2, worker=ENGINE.id))
        changes.put_attempt(an_attempt("run_3", "a", 1, worker=OTHER_ENGINE.id))
        await store.commit(changes)

        assert await store.renew_leases(ENGINE, 99.0) == 2

        leases = {run.id: lease for run, lease in await store.active_runs()}
        assert leases["run_1"] == RunLease("run_1", ENGINE, 99.0)
        assert leases["run_2"] == RunLease("run_2", ENGINE, 99.0)
        assert leases["run_3"] == RunLease("run_3", OTHER_ENGINE, 10.0)
        old, current = await store.get_attempts("run_1", "a")
        assert (old.lease_until, current.lease_until) == (10.0, 99.0)
        (other,) = await store.get_attempts("run_3", "a")
        assert other.lease_until == 120.0

    async def test_released_run_has_no_lease(self, store: Store) -> None:
        await given_run(store, "run_1")
        await store.acquire_run("run_1", ENGINE, 10.0, None)
        await store.commit(Changes(released_runs={"run_1"}))
        assert await store.active_runs() == [(await store.get_run("run_1"), None)]
        assert await store.acquire_run("run_1", OTHER_ENGINE, 20.0, None)

    async def test_active_runs_lists_pending_and_running_runs_oldest_first(
        self, store: Store
    ) -> None:
        await given_run(store, "run_1", created_at=3.0, status=RunStatus.RUNNING)
        await given_run(store, "run_2", created_at=1.0)
        await given_run(store, "run_3", created_at=2.0, status=RunStatus.FAILED)
        await given_run(store, "run_4", created_at=4.0, status=RunStatus.CANCELLED)
        active = await store.active_runs()
        assert [(run.id, lease) for run, lease in active] == [("run_2", None), ("run_1", None)]

    # Dead letters and cache --------------------------------------------------------

    async def test_dead_letters_leave_out_replayed_ones_unless_asked(self, store: Store) -> None:
        await given_run(store, "run_1", "a")
        await given_run(store, "run_2", "a")
        changes = Changes()
        changes.put_dead_letter(a_dead_letter("dl_2", created_at=2.0))
        changes.put_dead_letter(a_dead_letter("dl_1", created_at=1.0, replayed_at=5.0))
        changes.put_dead_letter(a_dead_letter("dl_3", "run_2", created_at=3.0))
        await store.commit(changes)

        assert [d.id for d in await store.list_dead_letters()] == ["dl_2", "dl_3"]
        everything = await store.list_dead_letters(include_replayed=True)
        assert [d.id for d in everything] == ["dl_1", "dl_2", "dl_3"]
        assert [d.id for d in await store.list_dead_letters(run_id="run_2")] == ["dl_3"]
        assert await store.get_dead_letter("dl_1") == everything[0]

    async def test_missing_dead_letter_raises_dead_letter_not_found(self, store: Store) -> None:
        with pytest.raises(DeadLetterNotFound):
            await store.get_dead_letter("nope")

    async def test_replaying_a_dead_letter_is_a_commit_of_it(self, store: Store) -> None:
        await given_run(store, "run_1", "a")
        letter = a_dead_letter("dl_1")
        await store.commit(Changes(dead_letters={"dl_1": letter}))
        replayed = replace(letter, replayed_at=9.0)
        await store.commit(Changes(dead_letters={"dl_1": replayed}))
        assert await store.list_dead_letters() == []
        assert await store.get_dead_letter("dl_1") == replayed

    async def test_cached_output_is_found_by_key(self, store: Store) -> None:
        assert await store.get_cached_output("k") is None
        await store.commit(Changes(cache={"k": CacheEntry(TaskOutput(0, "one"), 1.0)}))
        two, j = CacheEntry(TaskOutput(0, "two"), 2.0), CacheEntry(TaskOutput(1), 2.0)
        await store.commit(Changes(cache={"k": two, "j": j}))
        assert await store.get_cached_output("k") == TaskOutput(0, "two")
        assert await store.get_cached_output("j") == TaskOutput(1)

    async def test_cached_output_older_than_not_before_is_not_found(self, store: Store) -> None:
        await store.commit(Changes(cache={"k": CacheEntry(TaskOutput(0, "old"), 10.0)}))
        assert await store.get_cached_output("k", 10.0) == TaskOutput(0, "old")
        assert await store.get_cached_output("k", 10.5) is None
        assert await store.get_cached_output("k", None) == TaskOutput(0, "old")

    async def test_a_rewritten_cache_entry_is_young_again(self, store: Store) -> None:
        await store.commit(Changes(cache={"k": CacheEntry(TaskOutput(0, "old"), 10.0)}))
        await store.commit(Changes(cache={"k": CacheEntry(TaskOutput(0, "new"), 20.0)}))
        assert await store.get_cached_output("k", 15.0) == TaskOutput(0, "new")

    async def test_clear_cache_removes_every_entry_and_counts_them(self, store: Store) -> None:
        assert await store.clear_cache() == 0
        entry = CacheEntry(TaskOutput(0, "x"), 1.0)
        await store.commit(Changes(cache={"a": entry, "b": entry}))
        assert await store.clear_cache() == 2
        assert await store.get_cached_output("a") is None
        assert await store.clear_cache() == 0

    # Tokens ------------------------------------------------------------------------

    async def test_saved_token_is_found_by_its_hash(self, store: Store) -> None:
        token = a_token(last_used_at=101.0)
        await store.save_token(token)
        assert await store.find_token(token.hash) == token
        assert await store.find_token("hash-of-something-else") is None

    async def test_token_with_a_stored_hash_is_refused_and_nothing_is_written(
        self, store: Store
    ) -> None:
        await store.save_token(a_token("tok_1"))
        with pytest.raises(StoreError):
            await store.save_token(replace(a_token("tok_2"), hash="hash-tok_1"))
        with pytest.raises(StoreError):
            await store.save_token(replace(a_token("tok_1"), hash="another-hash"))
        assert [t.id for t in await store.list_tokens()] == ["tok_1"]
        assert await store.find_token("another-hash") is None

    async def test_list_tokens_is_oldest_first_and_keeps_revoked_ones(self, store: Store) -> None:
        await store.save_token(a_token("tok_b", created_at=2.0))
        await store.save_token(a_token("tok_c", created_at=1.0))
        await store.save_token(a_token("tok_a", created_at=2.0, revoked_at=3.0))
        assert [t.id for t in await store.list_tokens()] == ["tok_c", "tok_a", "tok_b"]

    async def test_revoked_token_keeps_its_first_revocation_and_is_not_counted(
        self, store: Store
    ) -> None:
        await store.save_token(a_token("tok_1"))
        await store.save_token(a_token("tok_2"))
        assert await store.count_tokens() == 2
        revoked = await store.revoke_token("tok_1", 150.0)
        assert revoked == replace(a_token("tok_1"), revoked_at=150.0)
        assert await store.revoke_token("tok_1", 160.0) == revoked
        assert await store.find_token("hash-tok_1") == revoked
        assert await store.count_tokens() == 1

    async def test_touched_token_records_when_it_was_last_used(self, store: Store) -> None:
        await store.save_token(a_token("tok_1"))
        await store.touch_token("tok_1", 120.0)
        await store.touch_token("tok_1", 180.0)
        assert await store.find_token("hash-tok_1") == replace(a_token(), last_used_at=180.0)

    async def test_missing_token_raises_token_not_found(self, store: Store) -> None:
        with pytest.raises(TokenNotFound) as caught:
            await store.revoke_token("nope", 1.0)
        assert caught.value.token_id == "nope"
        with pytest.raises(TokenNotFound):
            await store.touch_token("nope", 1.0)
        assert await store.count_tokens() == 0

    # Agents ------------------------------------------------------------------------

    async def test_saved_agent_reads_back_with_its_version(self, store: Store) -> None:
        agent = an_agent(last_heartbeat_at=104.0)
        await store.save_agent(agent, version_of(agent))
        assert await store.get_agent("summarizer") == agent
        assert await store.agent_versions("summarizer") == [version_of(agent)]

    async def test_saving_an_agent_without_a_version_changes_only_its_record(
        self, store: Store
    ) -> None:
        agent = an_agent()
        await store.save_agent(agent, version_of(agent))
        sick = replace(agent, health=AgentHealth.DEGRADED, health_reason="x", health_changed_at=9.0)
        await store.save_agent(sick, None)
        assert await store.get_agent("summarizer") == sick
        assert await store.agent_versions("summarizer") == [version_of(agent)]

    async def test_agent_versions_are_kept_oldest_first(self, store: Store) -> None:
        first, second = an_agent(), an_agent(version=2, weight=1, capabilities=("x",))
        await store.save_agent(first, version_of(first))
        await store.save_agent(second, version_of(second))
        assert await store.get_agent("summarizer") == second
        versions = await store.agent_versions("summarizer")
        assert versions == [version_of(first), version_of(second)]

    async def test_a_stored_agent_version_is_refused_and_nothing_is_written(
        self, store: Store
    ) -> None:
        agent = an_agent()
        await store.save_agent(agent, version_of(agent))
        with pytest.raises(StoreError):
            await store.save_agent(replace(agent, weight=9), version_of(agent))
        assert await store.get_agent("summarizer") == agent

    async def test_list_agents_is_by_name_and_leaves_out_deregistered_unless_asked(
        self, store: Store
    ) -> None:
        for agent in (an_agent("b"), an_agent("a"), an_agent("c", deregistered_at=150.0)):
            await store.save_agent(agent, version_of(agent))
        assert [a.name for a in await store.list_agents()] == ["a", "b"]
        every = await store.list_agents(include_deregistered=True)
        assert [a.name for a in every] == ["a", "b", "c"]

    async def test_missing_agent_raises_agent_not_found(self, store: Store) -> None:
        with pytest.raises(AgentNotFound) as caught:
            await store.get_agent("nope")
        assert caught.value.name == "nope"
        assert await store.agent_versions("nope") == []

    # Secrets -----------------------------------------------------------------------

    async def test_first_set_of_a_secret_is_version_one(self, store: Store) -> None:
        saved = await store.save_secret("API_KEY", "cipher-1", 100.0)
        assert saved == Secret("API_KEY", 1, "cipher-1", 100.0, 100.0)
        assert await store.get_secret("API_KEY") == saved

    async def test_setting_a_secret_again_makes_the_next_version_and_keeps_created_at(
        self, store: Store
    ) -> None:
        await store.save_secret("API_KEY", "cipher-1", 100.0)
        saved = await store.save_secret("API_KEY", "cipher-2", 150.0)
        assert saved == Secret("API_KEY", 2, "cipher-2", 100.0, 150.0)
        assert await store.get_secret("API_KEY") == saved

    async def test_list_secrets_is_by_name(self, store: Store) -> None:
        for name in ("B", "A", "C"):
            await store.save_secret(name, f"cipher-{name}", 1.0)
        assert [s.name for s in await store.list_secrets()] == ["A", "B", "C"]

    async def test_deleted_secret_is_gone_and_missing_ones_raise_secret_not_found(
        self, store: Store
    ) -> None:
        await store.save_secret("API_KEY", "cipher", 1.0)
        await store.delete_secret("API_KEY")
        assert await store.list_secrets() == []
        with pytest.raises(SecretNotFound) as caught:
            await store.get_secret("API_KEY")
        assert caught.value.name == "API_KEY"
        with pytest.raises(SecretNotFound):
            await store.delete_secret("API_KEY")

    # Dashboard queries -------------------------------------------------------------

    async def test_count_runs_gives_every_status_with_zeros_for_none(self, store: Store) -> None:
        assert await store.count_runs() == dict.fromkeys(RunStatus, 0)
        await given_run(store, "run_1")
        await given_run(store, "run_2", status=RunStatus.SUCCEEDED)
        await given_run(store, "run_3", status=RunStatus.SUCCEEDED, workflow="other")
        await given_run(store, "run_4", status=RunStatus.FAILED, workflow="other")
        counts = await store.count_runs()
        assert counts == {
            RunStatus.PENDING: 1,
            RunStatus.RUNNING: 0,
            RunStatus.SUCCEEDED: 2,
            RunStatus.FAILED: 1,
            RunStatus.CANCELLED: 0,
        }
        assert sum(counts.values()) == len(await store.list_runs())

    async def test_count_runs_of_one_workflow_follows_its_runs(self, store: Store) -> None:
        run = await given_run(store, "run_1")
        await given_run(store, "run_2", status=RunStatus.SUCCEEDED, workflow="other")
        zeros = dict.fromkeys(RunStatus, 0)
        assert await store.count_runs(workflow="other") == zeros | {RunStatus.SUCCEEDED: 1}
        assert await store.count_runs(workflow="nope") == zeros
        await store.commit(Changes(runs={"run_1": replace(run, status=RunStatus.RUNNING)}))
        assert await store.count_runs(workflow="wf") == zeros | {RunStatus.RUNNING: 1}

    async def test_task_throughput_counts_finished_task_runs_per_bucket(self, store: Store) -> None:
        # Every final status counts (succeeded, failed, skipped, cancelled); `e` still runs.
        await given_finished(
            store, "run_1", {"a": 99.9, "b": 100.0, "c": 105.0, "d": 109.999, "e": None}
        )
        await given_finished(store, "run_2", {"a": 110.0, "b": 125.0, "c": 134.0, "d": 135.0})

        async def throughput(since: float, until: float, bucket: float) -> list[int]:
            return await store.task_throughput(since=since, until=until, bucket_seconds=bucket)

        assert await throughput(100.0, 140.0, 10.0) == [3, 1, 1, 2]
        # `until` is excluded, and the last bucket is cut short at it.
        assert await throughput(100.0, 135.0, 10.0) == [3, 1, 1, 1]
        assert await throughput(0.0, 1000.0, 1000.0) == [8]
        assert await throughput(200.0, 230.0, 10.0) == [0, 0, 0]

    async def test_task_throughput_counts_a_replayed_task_when_it_finishes_again(
        self, store: Store
    ) -> None:
        await given_finished(store, "run_1", {"a": 105.0})
        replayed = TaskRun("run_1", "a", TaskStatus.SUCCEEDED, finished_at=125.0)
        await store.commit(Changes(task_runs={("run_1", "a"): replayed}))
        counts = await store.task_throughput(since=100.0, until=130.0, bucket_seconds=10.0)
        assert counts == [0, 0, 1]

    async def test_task_throughput_over_a_wall_clock_window_has_one_bucket_per_step(
        self, store: Store
    ) -> None:
        since = 1_700_000_000.123  # since + 600 - since is not exactly 600 in floating point
        await given_finished(store, "run_1", {"a": since, "b": since + 599.99})
        counts = await store.task_throughput(since=since, until=since + 600, bucket_seconds=10)
        assert (len(counts), counts[0], counts[-1], sum(counts)) == (60, 1, 1, 2)
        longer = await store.task_throughput(since=since, until=since + 605, bucket_seconds=10)
        assert len(longer) == 61

    async def test_task_throughput_of_an_empty_window_is_empty_and_bad_buckets_are_refused(
        self, store: Store
    ) -> None:
        await given_finished(store, "run_1", {"a": 100.0})
        assert await store.task_throughput(since=100.0, until=100.0, bucket_seconds=10.0) == []
        assert await store.task_throughput(since=100.0, until=50.0, bucket_seconds=10.0) == []
        for bad in (0.0, -1.0, float("nan"), float("inf")):
            with pytest.raises(InvalidQuery) as caught:
                await store.task_throughput(since=0.0, until=10.0, bucket_seconds=bad)
            assert caught.value.field == "bucket_seconds"
        with pytest.raises(InvalidQuery, match="more than 10000"):
            await store.task_throughput(since=0.0, until=86400.0, bucket_seconds=0.001)
        with pytest.raises(InvalidQuery) as caught:
            await store.task_throughput(since=float("-inf"), until=10.0, bucket_seconds=1.0)
        assert caught.value.field == "since"

    async def test_count_dead_letters_leaves_out_replayed_ones_unless_asked(
        self, store: Store
    ) -> None:
        assert await store.count_dead_letters() == 0
        await given_dead_letters(store)
        assert await store.count_dead_letters() == 4
        assert await store.count_dead_letters(include_replayed=True) == 5
        letter = await store.get_dead_letter("dl_1")
        await store.commit(Changes(dead_letters={"dl_1": replace(letter, replayed_at=10.0)}))
        assert await store.count_dead_letters() == 3
        assert await store.count_dead_letters(include_replayed=True) == 5

    async def test_dead_letters_page_newest_first_with_before(self, store: Store) -> None:
        await given_dead_letters(store)
        first = await store.list_dead_letters(newest_first=True, limit=2)
        assert letter_ids(first) == ["dl_5", "dl_4"]
        second = await store.list_dead_letters(newest_first=True, limit=2, before=first[-1].id)
        assert letter_ids(second) == ["dl_3", "dl_1"]  # dl_4 and dl_3 tie on created_at
        assert await store.list_dead_letters(newest_first=True, limit=2, before="dl_1") == []
        every = await store.list_dead_letters(newest_first=True, include_replayed=True)
        assert letter_ids(every) == ["dl_5", "dl_4", "dl_3", "dl_2", "dl_1"]
        # A page may go on from a letter replayed since it was shown.
        assert letter_ids(await store.list_dead_letters(before="dl_2")) == ["dl_1"]

    async def test_dead_letters_page_oldest_first_with_after(self, store: Store) -> None:
        await given_dead_letters(store)
        assert letter_ids(await store.list_dead_letters()) == ["dl_1", "dl_3", "dl_4", "dl_5"]
        first = await store.list_dead_letters(limit=3)
        assert letter_ids(first) == ["dl_1", "dl_3", "dl_4"]
        rest = await store.list_dead_letters(limit=3, after=first[-1].id)
        assert letter_ids(rest) == ["dl_5"]
        assert await store.list_dead_letters(limit=3, after=rest[-1].id) == []
        between = await store.list_dead_letters(after="dl_1", before="dl_5")
        assert letter_ids(between) == ["dl_3", "dl_4"]

    async def test_dead_letters_of_a_run_page_too(self, store: Store) -> None:
        await given_dead_letters(store)
        newest = await store.list_dead_letters(run_id="run_2", newest_first=True, limit=1)
        assert letter_ids(newest) == ["dl_5"]
        older = await store.list_dead_letters(run_id="run_2", newest_first=True, before="dl_5")
        assert letter_ids(older) == ["dl_3"]

    async def test_dead_letter_limits_and_unknown_cursors(self, store: Store) -> None:
        await given_dead_letters(store)
        assert await store.list_dead_letters(limit=0) == []
        assert await store.list_dead_letters(limit=-5) == []
        assert len(await store.list_dead_letters(limit=None)) == 4
        with pytest.raises(DeadLetterNotFound):
            await store.list_dead_letters(before="nope")
        with pytest.raises(DeadLetterNotFound) as caught:
            await store.list_dead_letters(newest_first=True, after="nope")
        assert caught.value.dead_letter_id == "nope"

    async def test_run_attempts_come_by_start_then_task_run_order_then_number(
        self, store: Store
    ) -> None:
        await given_run(store, "run_1", "b", "a")  # b is the run's first task run
        await given_run(store, "run_2", "a")
        changes = Changes()
        for attempt in [
            an_attempt_at("run_1", "a", 1, 10.0),
            an_attempt_at("run_1", "b", 1, 10.0),
            an_attempt_at("run_1", "a", 3, 20.0),
            an_attempt_at("run_1", "a", 2, 20.0),
            an_attempt_at("run_1", "b", 2, 15.0, agent="alpha"),
            an_attempt_at("run_2", "a", 1, 12.0),
        ]:
            changes.put_attempt(attempt)
        await store.commit(changes)
        got = await store.get_run_attempts("run_1")
        assert [(a.task_id, a.number) for a in got] == [
            ("b", 1),
            ("a", 1),
            ("b", 2),
            ("a", 2),
            ("a", 3),
        ]
        assert got[2] == an_attempt_at("run_1", "b", 2, 15.0, agent="alpha")

    async def test_run_attempts_of_a_run_without_any_or_of_an_unknown_run(
        self, store: Store
    ) -> None:
        await given_run(store, "run_1", "a")
        assert await store.get_run_attempts("run_1") == []
        with pytest.raises(RunNotFound) as caught:
            await store.get_run_attempts("nope")
        assert caught.value.run_id == "nope"

    async def test_agent_attempts_are_the_latest_it_served_newest_first(self, store: Store) -> None:
        await given_run(store, "run_1", "a", "b")
        await given_run(store, "run_2", "a")
        changes = Changes()
        for attempt in [
            an_attempt_at("run_1", "a", 1, 10.0, agent="alpha"),
            an_attempt_at("run_1", "a", 2, 30.0, agent="beta"),
            an_attempt_at("run_1", "b", 1, 20.0, agent="alpha"),
            an_attempt_at("run_2", "a", 1, 20.0, agent="alpha"),  # ties run_1's b: run id breaks it
            an_attempt_at("run_2", "a", 2, 40.0),  # no output: it names no agent
        ]:
            changes.put_attempt(attempt)
        await store.commit(changes)

        async def served(agent: str, limit: int = 20) -> list[tuple[str, str, int]]:
            attempts = await store.list_agent_attempts(agent, limit=limit)
            return [(a.run_id, a.task_id, a.number) for a in attempts]

        assert await served("alpha") == [("run_2", "a", 1), ("run_1", "b", 1), ("run_1", "a", 1)]
        assert await served("alpha", limit=2) == [("run_2", "a", 1), ("run_1", "b", 1)]
        assert await served("alpha", limit=0) == []
        assert await served("alpha", limit=-1) == []
        assert await served("beta") == [("run_1", "a", 2)]
        assert await served("nobody") == []
        (latest, *_) = await store.list_agent_attempts("alpha")
        assert latest == an_attempt_at("run_2", "a", 1, 20.0, agent="alpha")

    async def test_an_attempt_is_listed_under_the_agent_its_latest_write_names(
        self, store: Store
    ) -> None:
        await given_run(store, "run_1", "a")
        key = ("run_1", "a", 1)
        await store.commit(Changes(attempts={key: an_attempt("run_1", "a")}))
        assert await store.list_agent_attempts("alpha") == []  # running: no output, no agent
        await store.commit(Changes(attempts={key: an_attempt_at(*key, 10.0, agent="alpha")}))
        assert len(await store.list_agent_attempts("alpha")) == 1
        await store.commit(Changes(attempts={key: an_attempt_at(*key, 10.0, agent="beta")}))
        assert await store.list_agent_attempts("alpha") == []
        assert len(await store.list_agent_attempts("beta")) == 1
