"""The engine as a user sees it: DAG order, limits, retries, fallbacks, dead letters, cancel."""

from __future__ import annotations

import asyncio

import anyio
import engine_callables as calls
import pytest
from engine_support import WAIT, hub_on, next_event, python_task, run_to_end

from aop_mcp.engine import ManualClock
from aop_mcp.errors import (
    DeadLetterReplayed,
    EngineStopped,
    NothingToRetry,
    RunFinished,
    RunNotFinished,
)
from aop_mcp.models import AttemptStatus, FailureKind, RunStatus, TaskStatus

pytestmark = pytest.mark.anyio


@pytest.fixture(autouse=True)
def _fresh_callables() -> None:
    calls.reset()


def statuses(detail) -> dict[str, str]:
    return {t.task_id: str(t.status) for t in detail.tasks}


async def test_fan_out_then_join_passes_outputs_downstream(tmp_path):
    document = """
name: fan
tasks:
  - id: start
    run: {executor: local, command: [echo, '{"word": "hi"}']}
  - id: left
    needs: [start]
    run: {executor: local, shell: "echo L-{{ tasks.start.output.json.word }}"}
  - id: right
    needs: [start]
    run: {executor: local, shell: "echo R-{{ tasks.start.output.json.word }}"}
  - id: join
    needs: [left, right]
    run: {executor: local, shell: "echo {{ tasks.left.output }}+{{ tasks.right.output }}"}
"""
    async with hub_on(tmp_path) as hub:
        run_id = await run_to_end(hub, document)
        detail = await hub.runs.get(run_id)
    assert detail.run.status is RunStatus.SUCCEEDED
    join = next(t for t in detail.tasks if t.task_id == "join")
    assert join.output.stdout == "L-hi+R-hi\n"
    assert set(statuses(detail).values()) == {"succeeded"}
    work = tmp_path / "data" / "work"
    assert not work.exists() or list(work.iterdir()) == []  # no attempt folders left behind


async def test_ready_tasks_start_by_priority_then_age(tmp_path):
    tasks = [python_task("first", "hold")]
    for name, priority in [("low", 0), ("high", 10), ("mid", 5), ("low2", 0)]:
        tasks.append(python_task(name, "record", needs=["first"], priority=priority))
    document = {"name": "prio", "tasks": tasks}
    async with hub_on(tmp_path, max_concurrency=1) as hub:
        await hub.workflows.define(document)
        run = await hub.runs.start("prio")
        with anyio.fail_after(WAIT):
            await calls.entered["first"].wait()
        calls.gates["first"].set()
        with anyio.fail_after(WAIT):
            await hub.runs.wait(run.id)
    assert calls.calls == ["first", "high", "mid", "low", "low2"]


async def test_max_parallel_limits_tasks_running_at_once_in_a_run(tmp_path):
    names = [f"t{i}" for i in range(6)]
    document = {"name": "par", "max_parallel": 2, "tasks": [python_task(n, "hold") for n in names]}
    async with hub_on(tmp_path, max_concurrency=10) as hub:
        await hub.workflows.define(document)
        run = await hub.runs.start("par")
        for name in names:
            with anyio.fail_after(WAIT):
                await calls.entered[name].wait()
            assert len(calls.running) <= 2
            calls.gates[name].set()
        with anyio.fail_after(WAIT):
            done = await hub.runs.wait(run.id)
    assert done.status is RunStatus.SUCCEEDED
    assert calls.peak[0] == 2


async def test_failed_attempt_waits_its_backoff_before_the_retry(tmp_path):
    clock = ManualClock()
    marker = tmp_path / "second-attempt-may-pass"
    document = {
        "name": "flaky",
        "tasks": [
            {
                "id": "flaky",
                "run": {"executor": "local", "shell": f"test -e {marker}"},
                "retry": {
                    "max_attempts": 3,
                    "backoff": {"initial": "10m", "max": "1h", "jitter": 0},
                },
            }
        ],
    }
    async with hub_on(tmp_path, clock=clock) as hub, hub.bus.subscribe() as events:
        await hub.workflows.define(document)
        run = await hub.runs.start("flaky")
        retrying = await next_event(events, "task.retrying", "flaky")
        assert retrying.data["at"] == pytest.approx(clock.now() + 600)
        task = await hub.store.get_task_run(run.id, "flaky")
        assert task.status is TaskStatus.READY
        assert task.next_attempt_at == pytest.approx(clock.now() + 600)
        marker.touch()
        clock.advance(599)
        clock.advance(1)
        with anyio.fail_after(WAIT):
            done = await hub.runs.wait(run.id)
        detail = await hub.runs.task(run.id, "flaky")
    assert done.status is RunStatus.SUCCEEDED
    assert [a.status for a in detail.attempts] == [AttemptStatus.FAILED, AttemptStatus.SUCCEEDED]
    assert detail.attempts[0].error.kind is FailureKind.EXIT_CODE


async def test_a_pending_retry_survives_a_restart(tmp_path):
    clock = ManualClock()
    marker = tmp_path / "ok"
    document = {
        "name": "later",
        "tasks": [
            {
                "id": "t",
                "run": {"executor": "local", "shell": f"test -e {marker}"},
                "retry": {
                    "max_attempts": 2,
                    "backoff": {"initial": "1h", "max": "2h", "jitter": 0},
                },
            }
        ],
    }
    async with hub_on(tmp_path, clock=clock) as hub, hub.bus.subscribe() as events:
        await hub.workflows.define(document)
        run = await hub.runs.start("later")
        await next_event(events, "task.retrying", "t")
    marker.touch()
    async with hub_on(tmp_path, clock=clock) as hub:
        assert hub.engine.drives(run.id)
        clock.advance(3600)
        with anyio.fail_after(WAIT):
            done = await hub.runs.wait(run.id)
    assert done.status is RunStatus.SUCCEEDED


async def test_timeout_fails_the_attempt_with_kind_timeout(tmp_path):
    document = {
        "name": "slow",
        "tasks": [
            {
                "id": "slow",
                "run": {"executor": "local", "command": ["sleep", "30"]},
                "timeout": "200ms",
            }
        ],
    }
    async with hub_on(tmp_path) as hub:
        run_id = await run_to_end(hub, document)
        detail = await hub.runs.task(run_id, "slow")
    assert detail.task.status is TaskStatus.FAILED
    assert detail.task.error.kind is FailureKind.TIMEOUT


async def test_cancel_kills_the_running_attempt_and_cancels_the_rest(tmp_path):
    pid_file = tmp_path / "pid"
    document = {
        "name": "long",
        "tasks": [
            {
                "id": "long",
                "run": {"executor": "local", "shell": f"echo $$ > {pid_file}; exec sleep 60"},
            },
            {"id": "after", "needs": ["long"], "run": {"executor": "local", "command": ["true"]}},
        ],
    }
    async with hub_on(tmp_path) as hub, hub.bus.subscribe() as events:
        await hub.workflows.define(document)
        run = await hub.runs.start("long")
        await next_event(events, "task.started", "long")
        await hub.runs.cancel(run.id)
        with anyio.fail_after(WAIT):
            done = await hub.runs.wait(run.id)
        detail = await hub.runs.get(run.id)
        attempts = (await hub.runs.task(run.id, "long")).attempts
        with pytest.raises(RunFinished):
            await hub.runs.cancel(run.id)
    assert done.status is RunStatus.CANCELLED
    assert statuses(detail) == {"long": "cancelled", "after": "cancelled"}
    assert attempts[-1].status is AttemptStatus.CANCELLED


async def test_fallback_stands_in_for_a_failed_task(tmp_path):
    document = """
name: fb
tasks:
  - id: primary
    run: {executor: local, shell: "exit 1"}
    fallback: backup
  - id: backup
    run: {executor: local, command: [echo, from-backup]}
  - id: use
    needs: [primary]
    run: {executor: local, shell: "echo got {{ tasks.primary.output }}"}
"""
    async with hub_on(tmp_path) as hub:
        run_id = await run_to_end(hub, document)
        detail = await hub.runs.get(run_id)
        letters = await hub.dead_letters.list(run_id=run_id)
    tasks = {t.task_id: t for t in detail.tasks}
    assert detail.run.status is RunStatus.SUCCEEDED
    assert tasks["primary"].status is TaskStatus.FAILED
    assert tasks["primary"].recovered_by == "backup"
    assert tasks["use"].output.stdout == "got from-backup\n"
    assert letters == []


async def test_fallback_is_skipped_when_its_primary_succeeds(tmp_path):
    document = """
name: fb-ok
tasks:
  - id: primary
    run: {executor: local, command: ["true"]}
    fallback: backup
  - id: backup
    run: {executor: local, command: ["true"]}
"""
    async with hub_on(tmp_path) as hub:
        run_id = await run_to_end(hub, document)
        detail = await hub.runs.get(run_id)
    assert detail.run.status is RunStatus.SUCCEEDED
    backup = next(t for t in detail.tasks if t.task_id == "backup")
    assert backup.status is TaskStatus.SKIPPED
    assert backup.skip_reason == "not needed: 'primary' succeeded"


async def test_failed_task_is_dead_lettered_its_branch_skipped_and_replay_finishes_the_run(
    tmp_path,
):
    marker = tmp_path / "fixed"
    document = {
        "name": "dlq",
        "tasks": [
            {"id": "bad", "run": {"executor": "local", "shell": f"test -e {marker}"}},
            {
                "id": "after_bad",
                "needs": ["bad"],
                "run": {"executor": "local", "command": ["true"]},
            },
            {"id": "independent", "run": {"executor": "local", "command": ["true"]}},
        ],
    }
    async with hub_on(tmp_path) as hub:
        run_id = await run_to_end(hub, document)
        failed = await hub.runs.get(run_id)
        [letter] = await hub.dead_letters.list()
        marker.touch()
        await hub.dead_letters.replay(letter.id)
        with anyio.fail_after(WAIT):
            done = await hub.runs.wait(run_id)
        after = await hub.runs.get(run_id)
        with pytest.raises(DeadLetterReplayed):
            await hub.dead_letters.replay(letter.id)
        remaining = await hub.dead_letters.list()
    assert failed.run.status is RunStatus.FAILED
    assert statuses(failed) == {"bad": "failed", "after_bad": "skipped", "independent": "succeeded"}
    assert letter.task_id == "bad"
    assert letter.error.kind is FailureKind.EXIT_CODE
    assert done.status is RunStatus.SUCCEEDED
    assert set(statuses(after).values()) == {"succeeded"}
    assert remaining == []


async def test_false_condition_skips_the_task_and_its_dependants(tmp_path):
    document = """
name: cond
inputs:
  deploy: {type: boolean, default: false}
tasks:
  - id: deploy
    when: inputs.deploy
    run: {executor: local, command: ["true"]}
  - id: announce
    needs: [deploy]
    run: {executor: local, command: ["true"]}
"""
    async with hub_on(tmp_path) as hub:
        skipped_run = await run_to_end(hub, document)
        ran_run = await run_to_end(hub, document, deploy=True)
        skipped = await hub.runs.get(skipped_run)
        ran = await hub.runs.get(ran_run)
    assert skipped.run.status is RunStatus.SUCCEEDED
    assert statuses(skipped) == {"deploy": "skipped", "announce": "skipped"}
    assert statuses(ran) == {"deploy": "succeeded", "announce": "succeeded"}


async def test_template_error_fails_the_task_for_good_without_retrying(tmp_path):
    document = """
name: tmpl
tasks:
  - id: make
    run: {executor: local, command: [echo, '{"a": 1}']}
  - id: use
    needs: [make]
    run: {executor: local, command: [echo, "{{ tasks.make.output.json.missing }}"]}
    retry: {max_attempts: 5}
"""
    async with hub_on(tmp_path) as hub:
        run_id = await run_to_end(hub, document)
        detail = await hub.runs.task(run_id, "use")
    assert detail.task.status is TaskStatus.FAILED
    assert detail.task.error.kind is FailureKind.TEMPLATE
    assert detail.attempts == []


async def test_same_idempotency_key_returns_the_same_run(tmp_path):
    document = {"name": "idem", "tasks": [python_task("a", "record")]}
    async with hub_on(tmp_path) as hub:
        await hub.workflows.define(document)
        first = await hub.runs.start("idem", idempotency_key="order-42")
        second = await hub.runs.start("idem", idempotency_key="order-42")
        with anyio.fail_after(WAIT):
            await hub.runs.wait(first.id)
        runs = await hub.runs.list(workflow="idem")
    assert second.id == first.id
    assert len(runs) == 1
    assert calls.calls == ["a"]


async def test_a_new_run_is_not_adopted_by_its_own_engine_before_it_is_admitted(tmp_path):
    # The adoption poll may read the runs between a new run's commit and its admission:
    # it must leave the run to `submit`, or the run's tasks would run twice.
    document = {"name": "once", "tasks": [python_task("a", "record")]}
    async with hub_on(tmp_path) as hub:
        await hub.workflows.define(document)
        admit = hub.engine.submit
        adopted: list[list[str]] = []

        async def submit_after_a_poll(run, task_runs):
            adopted.append(await hub.engine.leases.adopt_orphans())
            await admit(run, task_runs)

        hub.engine.submit = submit_after_a_poll  # type: ignore[method-assign]
        run = await hub.runs.start("once")
        with anyio.fail_after(WAIT):
            done = await hub.runs.wait(run.id)
    assert adopted == [[]]
    assert done.status is RunStatus.SUCCEEDED
    assert calls.calls == ["a"]


async def test_cached_task_reuses_its_earlier_output(tmp_path):
    counter = tmp_path / "count"
    document = {
        "name": "cached",
        "tasks": [
            {
                "id": "expensive",
                "cache": True,
                "run": {"executor": "local", "shell": f"echo x >> {counter}; echo result"},
            }
        ],
    }
    async with hub_on(tmp_path) as hub:
        first = await run_to_end(hub, document)
        second = await run_to_end(hub, document)
        outputs = [
            (await hub.runs.task(r, "expensive")).task.output.stdout for r in (first, second)
        ]
        events = await hub.store.list_events(run_id=second)
        flags = [(await hub.runs.task(r, "expensive")).task.cached for r in (first, second)]
    assert outputs == ["result\n", "result\n"]
    assert counter.read_text() == "x\n"
    assert flags == [False, True]
    assert any(e.type == "task.succeeded" and e.data["cached"] for e in events)


async def test_runs_keep_the_workflow_version_they_started_with(tmp_path):
    v1 = {"name": "ver", "tasks": [python_task("a", "hold")]}
    v2 = {"name": "ver", "tasks": [python_task("b", "record")]}
    async with hub_on(tmp_path) as hub:
        await hub.workflows.define(v1)
        run = await hub.runs.start("ver")
        with anyio.fail_after(WAIT):
            await calls.entered["a"].wait()
        version, created = await hub.workflows.define(v2)
        calls.gates["a"].set()
        with anyio.fail_after(WAIT):
            done = await hub.runs.wait(run.id)
        detail = await hub.runs.get(run.id)
    assert created
    assert version.version == 2
    assert done.workflow_version == 1
    assert [t.task_id for t in detail.tasks] == ["a"]


async def test_graceful_stop_leaves_the_attempt_to_resume_without_using_a_retry(tmp_path):
    document = {"name": "resume", "tasks": [python_task("a", "hold")]}
    async with hub_on(tmp_path) as hub:
        await hub.workflows.define(document)
        run = await hub.runs.start("resume")
        with anyio.fail_after(WAIT):
            await calls.entered["a"].wait()
    interrupted = calls.calls.copy()
    calls.gates["a"].set()
    async with hub_on(tmp_path) as hub:
        with anyio.fail_after(WAIT):
            done = await hub.runs.wait(run.id)
        detail = await hub.runs.task(run.id, "a")
    assert interrupted == ["a"]
    assert done.status is RunStatus.SUCCEEDED
    assert [a.status for a in detail.attempts] == [AttemptStatus.FAILED, AttemptStatus.SUCCEEDED]
    assert detail.attempts[0].error.kind is FailureKind.INTERRUPTED
    assert detail.task.failures == 0
    assert detail.task.interruptions == 0


async def test_global_concurrency_limit_holds_across_runs(tmp_path):
    names = ["r0", "r1", "r2", "r3"]
    async with hub_on(tmp_path, max_concurrency=2) as hub:
        for name in names:
            await hub.workflows.define({"name": name, "tasks": [python_task(name, "hold")]})
        runs = [await hub.runs.start(name) for name in names]
        with anyio.fail_after(WAIT):
            await calls.entered["r0"].wait()
            await calls.entered["r1"].wait()
        assert calls.running == {"r0", "r1"}  # r2 and r3 wait for a free slot
        calls.gates["r0"].set()
        calls.gates["r1"].set()
        with anyio.fail_after(WAIT):
            await calls.entered["r2"].wait()
            await calls.entered["r3"].wait()
        calls.gates["r2"].set()
        calls.gates["r3"].set()
        for run in runs:
            with anyio.fail_after(WAIT):
                assert (await hub.runs.wait(run.id)).status is RunStatus.SUCCEEDED
    assert calls.peak[0] == 2


async def test_every_published_event_is_already_in_the_store(tmp_path):
    document = {
        "name": "ev",
        "tasks": [python_task("a", "record"), python_task("b", "record", needs=["a"])],
    }
    seen = []
    async with hub_on(tmp_path) as hub, hub.bus.subscribe() as events:
        await hub.workflows.define(document)
        run = await hub.runs.start("ev")
        while not seen or seen[-1].type != "run.succeeded":
            with anyio.fail_after(WAIT):
                event = await events.get()
            stored = await hub.store.list_events(after=event.seq - 1, limit=1)
            assert stored == [event]
            seen.append(event)
    assert [e.run_id for e in seen] == [run.id] * len(seen)
    assert [e.type for e in seen][-1] == "run.succeeded"


async def test_retrying_a_failed_run_reruns_its_failed_branch_only(tmp_path):
    marker = tmp_path / "fixed"
    counter = tmp_path / "ok.count"
    document = {
        "name": "retry",
        "tasks": [
            {"id": "ok", "run": {"executor": "local", "shell": f"echo x >> {counter}"}},
            {"id": "bad", "run": {"executor": "local", "shell": f"test -e {marker}"}},
            {"id": "after", "needs": ["bad"], "run": {"executor": "local", "command": ["true"]}},
        ],
    }
    async with hub_on(tmp_path) as hub:
        run_id = await run_to_end(hub, document)
        marker.touch()
        await hub.runs.retry(run_id)
        with anyio.fail_after(WAIT):
            done = await hub.runs.wait(run_id)
        detail = await hub.runs.get(run_id)
        letters = await hub.dead_letters.list(run_id=run_id)
        with pytest.raises(NothingToRetry):
            await hub.runs.retry(run_id)
    assert done.status is RunStatus.SUCCEEDED
    assert set(statuses(detail).values()) == {"succeeded"}
    assert counter.read_text() == "x\n"  # the task that succeeded did not run again
    assert letters == []  # its dead letter counts as replayed


async def test_retrying_a_cancelled_run_runs_what_was_cancelled(tmp_path):
    document = {
        "name": "again",
        "tasks": [python_task("a", "hold"), python_task("b", "record", needs=["a"])],
    }
    async with hub_on(tmp_path) as hub:
        await hub.workflows.define(document)
        run = await hub.runs.start("again")
        with anyio.fail_after(WAIT):
            await calls.entered["a"].wait()
        with pytest.raises(RunNotFinished):
            await hub.runs.retry(run.id)
        await hub.runs.cancel(run.id)
        with anyio.fail_after(WAIT):
            assert (await hub.runs.wait(run.id)).status is RunStatus.CANCELLED
        calls.gates["a"].set()
        await hub.runs.retry(run.id)
        with anyio.fail_after(WAIT):
            done = await hub.runs.wait(run.id)
    assert done.status is RunStatus.SUCCEEDED
    assert calls.calls == ["a", "a", "b"]


async def test_waiting_on_a_run_ends_with_an_error_when_the_engine_stops(tmp_path):
    document = {"name": "stopwait", "tasks": [python_task("a", "hold")]}
    async with hub_on(tmp_path) as hub:
        await hub.workflows.define(document)
        run = await hub.runs.start("stopwait")
        with anyio.fail_after(WAIT):
            await calls.entered["a"].wait()
        waiter = asyncio.ensure_future(hub.runs.wait(run.id))
        await asyncio.sleep(0)  # let the waiter register with the engine
    with anyio.fail_after(WAIT), pytest.raises(EngineStopped):
        await waiter
