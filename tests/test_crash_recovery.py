"""A process killed with SIGKILL mid-run loses nothing: the next engine finishes the run."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import anyio
import pytest
from anyio.abc import Process
from engine_support import WAIT, hub_on

from aop_mcp.models import AttemptStatus, FailureKind, RunStatus

pytestmark = pytest.mark.anyio


def crash_workflow(tmp_path: Path) -> Path:
    """`first` counts its runs; `second` reports through a FIFO, then hangs the first time."""
    d = tmp_path
    document = f"""
name: crash
tasks:
  - id: first
    run: {{executor: local, shell: "echo ran >> {d}/first.count"}}
  - id: second
    needs: [first]
    run:
      executor: local
      shell: >-
        if [ -e {d}/second.started ]; then echo resumed;
        else touch {d}/second.started; echo $$ > {d}/second.pid;
        echo started > {d}/fifo; exec sleep 120; fi
  - id: third
    needs: [second]
    run: {{executor: local, shell: "echo {{{{ tasks.second.output }}}}-and-done"}}
"""
    path = tmp_path / "crash.yaml"
    path.write_text(document)
    return path


async def line_from(fifo: Path, process: Process) -> str:
    """The first line a task writes to `fifo`; fails at once if the process died first."""
    fd = os.open(fifo, os.O_RDWR | os.O_NONBLOCK)  # RDWR: opening never blocks
    try:
        with anyio.fail_after(WAIT):
            while True:
                with anyio.move_on_after(0.1):
                    await anyio.wait_readable(fd)
                    return os.read(fd, 1024).decode().strip()
                assert process.returncode is None, f"aop run exited early: {process.returncode}"
    finally:
        os.close(fd)


def kill_group(pid_file: Path) -> None:
    with contextlib.suppress(FileNotFoundError, ProcessLookupError, ValueError):
        os.killpg(int(pid_file.read_text()), signal.SIGKILL)


async def kill_aop_run_mid_run(tmp_path: Path) -> None:
    """Start `aop run` on the crash workflow and SIGKILL it while `second` runs."""
    workflow = crash_workflow(tmp_path)
    os.mkfifo(tmp_path / "fifo")
    env = {**os.environ, "AOP_DATA_DIR": str(tmp_path / "data"), "AOP_SANDBOX": "false"}
    command = [sys.executable, "-m", "aop_mcp", "run", str(workflow)]
    command += ["--db", str(tmp_path / "aop.db")]
    process = await anyio.open_process(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        said = await line_from(tmp_path / "fifo", process)
        assert said == "started"
        process.send_signal(signal.SIGKILL)
        with anyio.fail_after(WAIT):
            assert await process.wait() == -signal.SIGKILL
    finally:
        if process.returncode is None:
            process.kill()
        with anyio.fail_after(WAIT):
            await process.wait()


async def process_exit(pid: int) -> None:
    """Return once `pid` has ended (a pidfd turns readable when its process exits)."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    try:
        await anyio.wait_readable(fd)
    finally:
        os.close(fd)


async def test_a_killed_engine_takes_its_running_task_process_with_it(tmp_path):
    try:
        await kill_aop_run_mid_run(tmp_path)
        pid = int((tmp_path / "second.pid").read_text())
        with anyio.fail_after(WAIT):  # the kernel sends the parent-death signal at once
            await process_exit(pid)
    finally:
        kill_group(tmp_path / "second.pid")


async def test_sigkill_mid_run_then_restart_finishes_the_run_without_rerunning(tmp_path):
    try:
        await kill_aop_run_mid_run(tmp_path)
    finally:
        kill_group(tmp_path / "second.pid")

    async with hub_on(tmp_path) as hub:
        [run] = await hub.runs.list(workflow="crash")
        with anyio.fail_after(WAIT):
            done = await hub.runs.wait(run.id)
        detail = await hub.runs.get(run.id)
        second = await hub.runs.task(run.id, "second")

    assert done.status is RunStatus.SUCCEEDED
    assert (tmp_path / "first.count").read_text() == "ran\n"  # not run again
    assert [a.status for a in second.attempts] == [AttemptStatus.FAILED, AttemptStatus.SUCCEEDED]
    assert second.attempts[0].error.kind is FailureKind.INTERRUPTED
    third = next(t for t in detail.tasks if t.task_id == "third")
    assert third.output.stdout == "resumed-and-done\n"


async def test_cancelling_an_orphaned_run_does_not_start_its_interrupted_task_again(tmp_path):
    try:
        await kill_aop_run_mid_run(tmp_path)
    finally:
        kill_group(tmp_path / "second.pid")
    async with hub_on(tmp_path, adopt=False) as hub:
        [run] = await hub.runs.list(workflow="crash")
        assert not hub.engine.drives(run.id)
        with anyio.fail_after(WAIT):
            cancelled = await hub.runs.cancel(run.id)
        detail = await hub.runs.get(run.id)
        second = await hub.runs.task(run.id, "second")
    assert cancelled.status is RunStatus.CANCELLED
    statuses = {t.task_id: t.status for t in detail.tasks}
    assert statuses == {"first": "succeeded", "second": "cancelled", "third": "cancelled"}
    assert [a.status for a in second.attempts] == [AttemptStatus.FAILED]
