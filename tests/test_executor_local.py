"""The local executor runs real subprocesses: output, environment, directories, kills."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import anyio
import pytest

from aop_mcp.executors import LocalExecutor, default_executors
from aop_mcp.models import FailureKind, TaskOutput
from aop_mcp.ports.executor import AttemptFailed, ExecutionRequest

pytestmark = pytest.mark.anyio

# The sandbox mounts a fresh /tmp, which hides a virtualenv living there: sandboxed probes
# use the interpreter the venv links to (they need only the standard library).
REAL_PYTHON = os.path.realpath(sys.executable)


@dataclass(frozen=True)
class LocalSpec:
    command: list[str] | None = None
    shell: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    workdir: str | None = None
    executor: str = "local"


def request(
    tmp_path: Path, spec: LocalSpec, *, timeout: float | None = None, cap: int = 65536
) -> ExecutionRequest:
    return ExecutionRequest(
        run_id="run_1",
        task_id="build",
        attempt=1,
        spec=spec,
        timeout=timeout,
        work_root=tmp_path / "work",
        output_cap=cap,
    )


async def run(tmp_path: Path, spec: LocalSpec, **kwargs: object) -> TaskOutput:
    with anyio.fail_after(10):
        return await LocalExecutor().execute(request(tmp_path, spec, **kwargs))


async def fail(tmp_path: Path, spec: LocalSpec, **kwargs: object) -> AttemptFailed:
    with pytest.raises(AttemptFailed) as caught:
        await run(tmp_path, spec, **kwargs)
    return caught.value


def attempt_dir(tmp_path: Path) -> Path:
    return tmp_path / "work" / "run_1" / "build" / "attempt-1"


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


async def poll_until(condition: Callable[[], bool]) -> None:
    """Wait for a condition no event announces: a process group vanishing, a file appearing."""
    with anyio.fail_after(5):
        while not condition():  # noqa: ASYNC110 - there is nothing else to wait on
            await anyio.sleep(0.01)


async def wait_until_group_gone(pgid: int) -> None:
    await poll_until(lambda: not group_alive(pgid))


def read_pids(path: Path) -> tuple[int, int]:
    pgid, grandchild = map(int, path.read_text().split())
    return pgid, grandchild


async def wait_for_pids(path: Path) -> tuple[int, int]:
    await poll_until(path.exists)
    return read_pids(path)


# Starts a grandchild `sleep`, then publishes "<shell pid = process group> <sleep pid>".
SPAWN_GRANDCHILD = 'sleep 30 & echo $$ $! > "$PIDS.tmp"; mv "$PIDS.tmp" "$PIDS"; echo started; wait'


async def test_command_succeeds_with_exit_code_and_stdout(tmp_path: Path) -> None:
    output = await run(tmp_path, LocalSpec(command=["echo", "hello"]))
    assert output.exit_code == 0
    assert output.stdout == "hello\n"
    assert output.stderr == ""
    assert output.json is None
    assert output.attempt == 1
    assert output.cap_bytes == 65536
    assert output.duration > 0


@pytest.mark.parametrize(
    ("printed", "parsed"),
    [('{"a": [1, 2]}', {"a": [1, 2]}), ("[true, null]", [True, None]), ("-4.5", -4.5)],
)
async def test_json_stdout_is_parsed(tmp_path: Path, printed: str, parsed: object) -> None:
    output = await run(tmp_path, LocalSpec(command=["printf", "%s\n", printed]))
    assert output.json == parsed


@pytest.mark.parametrize("printed", ["hello world", "nearly {json", "[1, 2", "true story"])
async def test_text_stdout_is_left_as_text(tmp_path: Path, printed: str) -> None:
    output = await run(tmp_path, LocalSpec(command=["printf", "%s", printed]))
    assert output.stdout == printed
    assert output.json is None


async def test_nonzero_exit_reports_exit_code_and_stderr_tail(tmp_path: Path) -> None:
    shell = 'echo progress; echo "first" >&2; echo "  boom: disk full  " >&2; echo >&2; exit 3'
    failed = await fail(tmp_path, LocalSpec(shell=shell))
    assert failed.error.kind is FailureKind.EXIT_CODE
    assert failed.error.exit_code == 3
    assert failed.error.message == "exited with code 3: boom: disk full"
    assert failed.output is not None
    assert failed.output.exit_code == 3
    assert failed.output.stdout == "progress\n"


async def test_long_stderr_tail_is_trimmed(tmp_path: Path) -> None:
    failed = await fail(tmp_path, LocalSpec(shell="printf '%0500d\\n' 7 >&2; exit 1"))
    assert len(failed.error.message) < 240


async def test_process_killed_by_a_signal_names_the_signal(tmp_path: Path) -> None:
    failed = await fail(tmp_path, LocalSpec(shell="kill -TERM $$"))
    assert failed.error.kind is FailureKind.EXIT_CODE
    assert failed.error.exit_code == -15
    assert failed.error.message == "killed by signal SIGTERM"


async def test_output_is_capped_and_the_child_does_not_block(tmp_path: Path) -> None:
    shell = "head -c 1000000 /dev/zero | tr '\\0' a; head -c 1000000 /dev/zero | tr '\\0' b >&2"
    output = await run(tmp_path, LocalSpec(shell=shell), cap=1000)
    assert output.exit_code == 0
    assert output.stdout == "a" * 1000
    assert output.stderr == "b" * 1000
    assert output.stdout_truncated
    assert output.stderr_truncated
    assert output.cap_bytes == 1000


async def test_truncated_json_is_not_parsed(tmp_path: Path) -> None:
    output = await run(tmp_path, LocalSpec(shell="printf '[%s]' $(seq -s, 1 500)"), cap=100)
    assert output.stdout_truncated
    assert output.json is None


async def test_environment_is_scrubbed_except_named_variables(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AOP_TEST_SECRET", "hunter2")
    output = await run(tmp_path, LocalSpec(command=["env"], env={"GREETING": "hi"}))
    env = dict(line.split("=", 1) for line in output.stdout.splitlines())
    workdir = str(attempt_dir(tmp_path))
    assert env == {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "HOME": workdir,
        "TMPDIR": f"{workdir}/.tmp",
        "GREETING": "hi",
        "AOP_RUN_ID": "run_1",
        "AOP_TASK_ID": "build",
        "AOP_ATTEMPT": "1",
    }
    assert "hunter2" not in output.stdout


async def test_base_env_supplies_path(tmp_path: Path) -> None:
    executor = LocalExecutor(base_env={"PATH": "/bin:/usr/bin"})
    with anyio.fail_after(10):
        output = await executor.execute(request(tmp_path, LocalSpec(shell='echo "$PATH"')))
    assert output.stdout == "/bin:/usr/bin\n"


async def test_per_attempt_workdir_exists_during_the_run_and_is_removed_after(
    tmp_path: Path,
) -> None:
    shell = 'pwd; test -d "$TMPDIR" && echo tmp-ok; echo data > file.txt && cat file.txt'
    output = await run(tmp_path, LocalSpec(shell=shell))
    assert output.stdout.splitlines() == [str(attempt_dir(tmp_path)), "tmp-ok", "data"]
    assert not attempt_dir(tmp_path).exists()


async def test_per_attempt_workdir_is_removed_after_a_failure(tmp_path: Path) -> None:
    await fail(tmp_path, LocalSpec(shell="echo data > file.txt; exit 1"))
    assert not attempt_dir(tmp_path).exists()


async def test_workdir_override_runs_there_and_is_kept(tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "marker.txt").write_text("here")
    output = await run(tmp_path, LocalSpec(shell="pwd; cat marker.txt", workdir=str(project)))
    assert output.stdout == f"{project}\nhere"
    assert (project / "marker.txt").exists()
    assert not attempt_dir(tmp_path).exists()


async def test_relative_workdir_is_made_inside_the_attempt_directory(tmp_path: Path) -> None:
    output = await run(tmp_path, LocalSpec(shell="pwd", workdir="src/app"))
    assert output.stdout == f"{attempt_dir(tmp_path) / 'src/app'}\n"
    assert not attempt_dir(tmp_path).exists()


async def test_missing_workdir_fails_naming_it(tmp_path: Path) -> None:
    failed = await fail(tmp_path, LocalSpec(command=["true"], workdir="/no/such/dir"))
    assert failed.error.kind is FailureKind.ERROR
    assert "'/no/such/dir'" in failed.error.message


async def test_missing_program_fails_naming_it(tmp_path: Path) -> None:
    failed = await fail(tmp_path, LocalSpec(command=["no-such-program-xyz", "--flag"]))
    assert failed.error.kind is FailureKind.ERROR
    assert "'no-such-program-xyz'" in failed.error.message


async def test_program_without_execute_permission_fails_naming_it(tmp_path: Path) -> None:
    script = tmp_path / "script.sh"
    script.write_text("#!/bin/sh\necho hi\n")
    failed = await fail(tmp_path, LocalSpec(command=[str(script)]))
    assert failed.error.kind is FailureKind.ERROR
    assert str(script) in failed.error.message
    assert "Permission denied" in failed.error.message


async def test_timeout_kills_the_whole_process_group(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    spec = LocalSpec(shell=SPAWN_GRANDCHILD, env={"PIDS": str(pids)})
    failed = await fail(tmp_path, spec, timeout=0.5)
    assert failed.error.kind is FailureKind.TIMEOUT
    assert failed.error.message == "timed out after 0.5s"
    assert failed.output is not None
    assert failed.output.stdout == "started\n"  # the output so far is kept
    pgid, grandchild = read_pids(pids)
    await wait_until_group_gone(pgid)
    with pytest.raises(ProcessLookupError):
        os.kill(grandchild, 0)
    assert not attempt_dir(tmp_path).exists()


@pytest.mark.slow
async def test_timeout_kills_a_group_that_ignores_sigterm(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    # An ignored signal stays ignored across exec: the shell and its `sleep` both shrug off
    # SIGTERM, so only the SIGKILL after the grace period stops them.
    spec = LocalSpec(shell="trap '' TERM; " + SPAWN_GRANDCHILD, env={"PIDS": str(pids)})
    failed = await fail(tmp_path, spec, timeout=0.3)
    assert failed.error.kind is FailureKind.TIMEOUT
    pgid, _ = read_pids(pids)
    await wait_until_group_gone(pgid)


async def test_cancellation_kills_the_whole_process_group(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    spec = LocalSpec(shell=SPAWN_GRANDCHILD, env={"PIDS": str(pids)})
    attempt = asyncio.create_task(LocalExecutor().execute(request(tmp_path, spec)))
    pgid, grandchild = await wait_for_pids(pids)
    assert group_alive(pgid)
    attempt.cancel()
    with anyio.fail_after(5), pytest.raises(asyncio.CancelledError):
        await attempt
    await wait_until_group_gone(pgid)
    with pytest.raises(ProcessLookupError):
        os.kill(grandchild, 0)
    assert not attempt_dir(tmp_path).exists()


async def test_cancel_scope_kills_the_whole_process_group(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    spec = LocalSpec(shell=SPAWN_GRANDCHILD, env={"PIDS": str(pids)})
    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(LocalExecutor().execute, request(tmp_path, spec))
            pgid, _ = await wait_for_pids(pids)
            tg.cancel_scope.cancel()
    await wait_until_group_gone(pgid)


async def test_sandbox_without_bubblewrap_says_how_to_turn_it_off(tmp_path: Path) -> None:
    executor = LocalExecutor(base_env={"PATH": str(tmp_path)}, sandbox=True)
    with anyio.fail_after(10), pytest.raises(AttemptFailed) as caught:
        await executor.execute(request(tmp_path, LocalSpec(command=["true"])))
    assert caught.value.error.kind is FailureKind.ERROR
    assert "bubblewrap" in caught.value.error.message
    assert "AOP_SANDBOX=0" in caught.value.error.message


@pytest.mark.skipif(
    shutil.which("bwrap") is None,
    reason="bubblewrap (bwrap) is not installed: `apt-get install bubblewrap` to run this",
)
async def test_sandbox_has_read_only_root_writable_workdir_and_no_network(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AOP_TEST_SECRET", "hunter2")
    outside = Path.cwd() / "sandbox-escape.txt"
    probe = (
        "import os, pathlib, socket, sys\n"
        "pathlib.Path('inside.txt').write_text('ok')\n"
        "print('wrote', pathlib.Path('inside.txt').read_text())\n"
        "try:\n"
        "    open(sys.argv[1], 'w')\n"
        "    print('outside writable')\n"
        "except OSError:\n"
        "    print('outside read-only')\n"
        "try:\n"
        "    socket.create_connection(('127.0.0.1', int(sys.argv[2])), timeout=2)\n"
        "    print('network reachable')\n"
        "except OSError:\n"
        "    print('no network')\n"
        "print(sorted(os.environ))\n"
    )
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
        spec = LocalSpec(command=[REAL_PYTHON, "-c", probe, str(outside), str(port)])
        executor = LocalExecutor(sandbox=True)
        with anyio.fail_after(10):
            output = await executor.execute(request(tmp_path, spec))
    lines = output.stdout.splitlines()
    assert lines[:3] == ["wrote ok", "outside read-only", "no network"]
    assert "AOP_TEST_SECRET" not in lines[3]
    assert "AOP_RUN_ID" in lines[3]
    assert not outside.exists()


def test_default_executors_are_local_python_and_dagger() -> None:
    executors = default_executors(sandbox=False)
    assert {name: executor.name for name, executor in executors.items()} == {
        "local": "local",
        "python": "python",
        "dagger": "dagger",
    }
