"""Dagger tasks through the whole hub: document, engine, executors, secrets, result cache,
and the SQLite store, with DaggerStandIn (a test double, tests/dagger_standin.py) as the
engine session on 127.0.0.1."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import anyio
import pytest
from dagger_standin import running, serving_standin, session_cli, session_starts
from engine_support import WAIT, hub_on, run_to_end, settings_for

from aop_mcp.api.schemas import TaskOutputView
from aop_mcp.executors.dagger_executor import DaggerExecutor
from aop_mcp.hub import Hub, open_hub
from aop_mcp.mcp.views import output_view
from aop_mcp.models import FailureKind, RunStatus, TaskOutput, TaskStatus
from aop_mcp.ports.executor import ExecutionRequest

pytestmark = pytest.mark.anyio

SECRET = "hub-s3cr3t-value-7d1e"
IMAGE = "python:3.12-slim"


def dagger_task(task_id: str, command: list[str], **fields: Any) -> dict[str, Any]:
    run = fields.pop("run", {})
    spec = {"executor": "dagger", "image": IMAGE, "command": command, **run}
    return {"id": task_id, "run": spec, **fields}


def keyed_workflow() -> dict[str, Any]:
    """`build` (cached) uses the secret and prints JSON; `report` reads it through a template."""
    script = 'echo "using $API_KEY" >&2; echo "{\\"greeting\\": \\"$GREETING\\"}"'
    build = dagger_task(
        "build",
        ["sh", "-c", script],
        cache=True,
        run={"env": {"GREETING": "hello"}, "secrets": ["API_KEY"]},
    )
    report = dagger_task(
        "report", ["echo", "{{ tasks.build.output.json.greeting }} from the container"]
    )
    return {"name": "containers", "tasks": [build, {**report, "needs": ["build"]}]}


def database_bytes(tmp_path: Path) -> bytes:
    """Everything the SQLite store wrote (the database and its WAL)."""
    return b"".join(path.read_bytes() for path in tmp_path.glob("aop.db*"))


async def build_of(hub: Hub, run_id: str) -> Any:
    return (await hub.runs.task(run_id, "build")).task


async def test_a_workflow_runs_dagger_tasks_with_a_secret_and_caches_by_its_version(
    tmp_path: Path,
) -> None:
    async with (
        serving_standin(tmp_path / "standin") as (standin, port),
        hub_on(tmp_path, dagger_env=standin.session_env(port)) as hub,
    ):
        await hub.secrets.set("API_KEY", SECRET)
        first = await run_to_end(hub, keyed_workflow())
        build = await build_of(hub, first)
        report = (await hub.runs.task(first, "report")).task
        assert build.output.stderr == "using ***\n"
        assert build.output.json == {"greeting": "hello"}
        digest = build.output.image_digest  # kept by the store, shown by MCP and REST
        assert digest.startswith("sha256:")
        assert output_view(build.output).image_digest == digest
        assert TaskOutputView.model_validate(build.output.to_dict()).image_digest == digest
        assert report.output.stdout == "hello from the container\n"

        second = await run_to_end(hub, keyed_workflow())
        assert (await build_of(hub, second)).cached
        assert [record.args[0] for record in standin.execs] == ["sh", "echo", "echo"]

        # The same value set again is a new version: the cached result no longer counts.
        await hub.secrets.set("API_KEY", SECRET)
        third = await run_to_end(hub, keyed_workflow())
        assert not (await build_of(hub, third)).cached
        assert standin.execs[-2].secrets == {"API_KEY": SECRET}

        assert {(await hub.runs.get(r)).run.status for r in (first, second, third)} == {
            RunStatus.SUCCEEDED
        }
        events = await hub.store.list_events()
        assert events
        assert SECRET not in repr(events)
    stored = database_bytes(tmp_path)
    assert SECRET.encode() not in stored
    assert b"using ***" in stored


async def test_a_secret_deleted_and_set_again_to_another_value_is_not_served_from_cache(
    tmp_path: Path,
) -> None:
    async with (
        serving_standin(tmp_path / "standin") as (standin, port),
        hub_on(tmp_path, dagger_env=standin.session_env(port)) as hub,
    ):
        await hub.secrets.set("API_KEY", SECRET)
        first = await run_to_end(hub, keyed_workflow())
        assert not (await build_of(hub, first)).cached
        await hub.secrets.delete("API_KEY")
        await hub.secrets.set("API_KEY", "another-value-5b8a")  # version 1 again
        second = await run_to_end(hub, keyed_workflow())
        assert not (await build_of(hub, second)).cached
    assert [record.secrets for record in standin.execs if record.args[0] == "sh"] == [
        {"API_KEY": SECRET},
        {"API_KEY": "another-value-5b8a"},
    ]


async def test_a_stuck_dagger_task_times_out_and_frees_its_slot(tmp_path: Path) -> None:
    async with serving_standin(tmp_path / "standin") as (standin, port):
        executor = DaggerExecutor(standin.session_env(port), grace=0.2)
        settings = settings_for(tmp_path, max_concurrency=1)
        async with open_hub(settings, adopt_orphans=True, executors={"dagger": executor}) as hub:
            stuck = dagger_task("stuck", ["sleep", standin.stall_marker], timeout=0.3, priority=10)
            after = dagger_task("after", ["echo", "my turn"])
            started = time.monotonic()
            run_id = await run_to_end(hub, {"name": "stuck", "tasks": [stuck, after]})
            elapsed = time.monotonic() - started
            tasks = {t.task_id: t for t in (await hub.runs.get(run_id)).tasks}
    assert tasks["stuck"].status is TaskStatus.FAILED
    assert tasks["stuck"].error.kind is FailureKind.TIMEOUT
    assert tasks["after"].status is TaskStatus.SUCCEEDED
    assert tasks["after"].started_at >= tasks["stuck"].finished_at  # one slot, freed in time
    assert elapsed < 5


async def test_without_an_engine_a_dagger_task_fails_once_within_a_second(
    tmp_path: Path,
) -> None:
    retried = dagger_task(
        "build", ["true"], retry={"max_attempts": 3, "backoff": {"initial": "10ms"}}
    )
    async with hub_on(tmp_path) as hub:  # no dagger_env: no session and no CLI
        started = time.monotonic()
        with anyio.fail_after(WAIT):
            run_id = await run_to_end(hub, {"name": "no-engine", "tasks": [retried]})
        elapsed = time.monotonic() - started
        task = await build_of(hub, run_id)
        [letter] = await hub.store.list_dead_letters(run_id=run_id)
    assert elapsed < 1
    assert (task.status, task.attempts) == (TaskStatus.FAILED, 1)
    assert task.error.kind is FailureKind.MISCONFIGURED
    assert task.error.message.startswith("no Dagger engine for this task")
    assert letter.error == task.error


def two_steps() -> dict[str, Any]:
    first = dagger_task("first", ["echo", "one"])
    second = dagger_task("second", ["echo", "two"], needs=["first"])
    return {"name": "two-steps", "tasks": [first, second]}


async def test_closing_the_hub_ends_the_dagger_session_its_tasks_shared(tmp_path: Path) -> None:
    async with serving_standin(tmp_path / "standin") as (standin, port):
        cli_env = session_cli(tmp_path, port, standin.token)
        async with hub_on(tmp_path, dagger_env=cli_env) as hub:
            run_id = await run_to_end(hub, two_steps())
            assert (await hub.runs.get(run_id)).run.status is RunStatus.SUCCEEDED
            [pid] = session_starts(tmp_path)  # one `dagger session` for both tasks
            assert running(pid)
        assert not running(pid)
        assert (tmp_path / "ended").exists()  # ended by closing its stdin, not killed
        assert standin.introspections == 1


class FailsToClose:
    """An executor whose `aclose` raises."""

    name = "fails-to-close"
    version = "1"

    async def execute(self, request: ExecutionRequest) -> TaskOutput:
        raise AssertionError("never given a task")

    async def aclose(self) -> None:
        raise RuntimeError("cannot close")


async def test_an_executor_that_fails_to_close_does_not_keep_the_dagger_session_alive(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with serving_standin(tmp_path / "standin") as (standin, port):
        dagger = DaggerExecutor(session_cli(tmp_path, port, standin.token))
        executors = {"first": FailsToClose(), "dagger": dagger}
        settings = settings_for(tmp_path)
        with caplog.at_level(logging.ERROR):
            async with open_hub(settings, adopt_orphans=True, executors=executors) as hub:
                await run_to_end(hub, two_steps())
                [pid] = session_starts(tmp_path)
        assert not running(pid)
    assert "closing executor 'fails-to-close' failed" in caplog.text
