"""The `local` executor: an attempt is a subprocess on this host, in its own process group.

The child gets a scrubbed environment, a fresh working directory, stdin from /dev/null and
capped stdout/stderr. A timeout or a cancellation kills the whole process group, so nothing
the command started outlives its attempt. With `sandbox=True` the command runs inside
bubblewrap: read-only root, writable working directory, no network unless the task says
`network: true`. A task's `limits` (address space, CPU seconds) are set with util-linux's
`prlimit` just before the command starts.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import time
from collections.abc import Mapping
from contextlib import suppress
from pathlib import Path
from typing import Any

from aop_mcp.executors.capture import CappedBuffer, last_line, parse_json
from aop_mcp.models import FailureKind, TaskError, TaskOutput
from aop_mcp.ports.executor import AttemptFailed, ExecutionRequest

DEFAULT_PATH = "/usr/local/bin:/usr/bin:/bin"
SYSTEM_PATH = "/usr/bin:/bin:/usr/sbin:/sbin"  # where util-linux (setpriv, prlimit) lives
_TERM_GRACE = 2.0  # a timed-out attempt gets this long to exit after SIGTERM
_CANCEL_GRACE = 0.1  # a cancelled attempt's caller is waiting: SIGKILL almost at once
_DRAIN_GRACE = 1.0  # after SIGKILL, how long the pipes may take to report end of file


class LocalExecutor:
    """Runs `command` (an argv list) or `shell` (through /bin/sh -c) as a subprocess.

    The per-attempt directory `work_root/run_id/task_id/attempt-N` is created fresh before the
    start and removed, with everything in it, when the attempt ends (success or failure):
    anything a task wants to keep must go to stdout or to a `workdir` of its own. Empty
    run and task folders above it are left for whoever cleans up runs.
    """

    name = "local"
    version = "1"

    def __init__(self, *, base_env: Mapping[str, str] | None = None, sandbox: bool = False):
        """`base_env`: variables every attempt gets (usually just PATH); `sandbox`: run
        inside bubblewrap."""
        self._base_env = {"PATH": DEFAULT_PATH, "LANG": "C.UTF-8", **(base_env or {})}
        self._sandbox = sandbox
        self._bwrap = shutil.which("bwrap", path=self._base_env["PATH"]) if sandbox else None
        self._setpriv = shutil.which("setpriv", path=SYSTEM_PATH)
        self._prlimit = shutil.which("prlimit", path=SYSTEM_PATH)

    async def execute(self, request: ExecutionRequest) -> TaskOutput:
        """Run one attempt; return its output or raise AttemptFailed."""
        attempt_dir = _fresh_dir(request)
        try:
            return await self._run(request, attempt_dir)
        finally:
            shutil.rmtree(attempt_dir, ignore_errors=True)

    async def _run(self, request: ExecutionRequest, attempt_dir: Path) -> TaskOutput:
        spec = request.spec
        workdir = _workdir(spec, attempt_dir)
        env = self._env(request, workdir, attempt_dir)
        argv = self._limited(_argv(spec), getattr(spec, "limits", None), env["PATH"], workdir)
        if self._sandbox:
            network = bool(getattr(spec, "network", False))
            argv = self._sandboxed(argv, env, workdir, attempt_dir, network)  # --die-with-parent
        elif self._setpriv is not None:
            argv = _dies_with_engine(self._setpriv, argv, env["PATH"], workdir)
        started = time.monotonic()
        proc = await _spawn(argv, workdir, env)
        out, err = CappedBuffer(request.output_cap), CappedBuffer(request.output_cap)
        timed_out = await _supervise(proc, out, err, request.timeout)
        output = _output(request, proc.returncode, out, err, time.monotonic() - started)
        if timed_out:
            message = f"timed out after {request.timeout:g}s"
            raise AttemptFailed(TaskError(FailureKind.TIMEOUT, message), output)
        if output.exit_code != 0:
            raise AttemptFailed(_exit_error(output.exit_code, output.stderr), output)
        return output

    def _env(self, request: ExecutionRequest, workdir: Path, attempt_dir: Path) -> dict[str, str]:
        """The whole environment of the child: nothing of the server's leaks in."""
        tmp = attempt_dir / ".tmp"
        tmp.mkdir()
        env = {**self._base_env, "HOME": str(workdir), "TMPDIR": str(tmp)}
        env.update(getattr(request.spec, "env", None) or {})
        env["AOP_RUN_ID"] = request.run_id
        env["AOP_TASK_ID"] = request.task_id
        env["AOP_ATTEMPT"] = str(request.attempt)
        return env

    def _sandboxed(
        self,
        argv: list[str],
        env: Mapping[str, str],
        workdir: Path,
        attempt_dir: Path,
        network: bool = False,
    ) -> list[str]:
        if self._bwrap is None:
            raise _error(
                "the sandbox is on but bubblewrap (bwrap) is not installed; install the "
                "`bubblewrap` package, or turn the sandbox off with AOP_SANDBOX=0"
            )
        return bwrap_argv(self._bwrap, argv, env, workdir, attempt_dir, network=network)

    def _limited(self, argv: list[str], limits: Any, path: str, workdir: Path) -> list[str]:
        """`argv` under `prlimit` when the task has limits; as it is otherwise."""
        options = prlimit_options(limits)
        if not options:
            return argv
        if self._prlimit is None:
            raise _error(
                "the task has limits but prlimit is not installed; install util-linux, "
                "or remove `limits` from the task"
            )
        program = argv[0] if self._sandbox else _resolve(argv[0], path, workdir)
        return [self._prlimit, *options, "--", program, *argv[1:]]


def prlimit_options(limits: Any) -> list[str]:
    """prlimit's options for a task's `limits` (`memory` in bytes, `cpu_seconds`)."""
    memory = getattr(limits, "memory", None)
    cpu = getattr(limits, "cpu_seconds", None)
    options = [f"--as={memory}"] if memory is not None else []
    return options + ([f"--cpu={cpu}"] if cpu is not None else [])


def bwrap_argv(
    bwrap: str,
    argv: list[str],
    env: Mapping[str, str],
    workdir: Path,
    attempt_dir: Path,
    *,
    network: bool = False,
) -> list[str]:
    """`argv` wrapped in bubblewrap: read-only root, writable working directories, private
    /tmp, /dev and /proc, every namespace unshared (no network unless `network`), a clean
    environment."""
    wrapped = [bwrap, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]
    wrapped += ["--tmpfs", "/tmp"]  # before the binds: a workdir under /tmp stays visible
    for path in dict.fromkeys((str(attempt_dir), str(workdir))):
        wrapped += ["--bind", path, path]
    wrapped += ["--unshare-all", *(["--share-net"] if network else [])]
    wrapped += ["--die-with-parent", "--new-session", "--clearenv"]
    for key, value in env.items():
        wrapped += ["--setenv", key, value]
    return [*wrapped, "--chdir", str(workdir), "--", *argv]


def _fresh_dir(request: ExecutionRequest) -> Path:
    path = request.work_root / request.run_id / request.task_id / f"attempt-{request.attempt}"
    try:
        path.mkdir(parents=True)
    except FileExistsError:  # left behind by an engine that died mid-attempt
        shutil.rmtree(path, ignore_errors=True)
        path.mkdir(parents=True)
    return path


def _workdir(spec: Any, attempt_dir: Path) -> Path:
    wanted = getattr(spec, "workdir", None)
    if not wanted:
        return attempt_dir
    path = Path(wanted)
    if not path.is_absolute():
        # A relative workdir is a folder of its own inside the fresh attempt directory.
        path = attempt_dir / path
        path.mkdir(parents=True, exist_ok=True)
    if not path.is_dir():
        raise _error(f"workdir {wanted!r} does not exist")
    return path


def _argv(spec: Any) -> list[str]:
    command = getattr(spec, "command", None)
    shell = getattr(spec, "shell", None)
    if command and shell is None:
        return list(command)
    if shell is not None and not command:
        return ["/bin/sh", "-c", shell]
    raise _error("a local task needs exactly one of `command` (a non-empty list) or `shell`")


def _dies_with_engine(setpriv: str, argv: list[str], path: str, workdir: Path) -> list[str]:
    """Run `argv` under `setpriv --pdeathsig KILL`: if the engine is killed (even with
    SIGKILL) the kernel kills the attempt's process too, instead of leaving it running
    beside the attempt the next engine starts. Processes it started itself are not covered.

    The program is resolved here so a missing one is still reported as not startable,
    not as setpriv's exit code.
    """
    return [setpriv, "--pdeathsig", "KILL", "--", _resolve(argv[0], path, workdir), *argv[1:]]


def _resolve(program: str, path: str, workdir: Path) -> str:
    if "/" not in program:
        found = shutil.which(program, path=path)
        if found is None:
            raise _error(f"cannot start {program!r}: not found on PATH {path}")
        return found
    candidate = workdir / program  # an absolute program replaces workdir
    if not candidate.is_file():
        raise _error(f"cannot start {program!r}: No such file or directory")
    if not os.access(candidate, os.X_OK):
        raise _error(f"cannot start {program!r}: Permission denied")
    return str(candidate)


async def _spawn(argv: list[str], workdir: Path, env: dict[str, str]) -> asyncio.subprocess.Process:
    try:
        return await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            cwd=workdir,
            env=env,
            start_new_session=True,  # the attempt is its own process group: killable as one
        )
    except OSError as exc:
        raise _error(f"cannot start {argv[0]!r}: {exc.strerror or exc}") from exc


async def _collect(proc: asyncio.subprocess.Process, out: CappedBuffer, err: CappedBuffer) -> None:
    # Process.wait() returns only once the pipes are closed too, so read them alongside.
    await asyncio.gather(out.drain(proc.stdout), err.drain(proc.stderr), proc.wait())


async def _supervise(
    proc: asyncio.subprocess.Process, out: CappedBuffer, err: CappedBuffer, limit: float | None
) -> bool:
    """Wait for the process and its output; True when it timed out (and was killed)."""
    try:
        async with asyncio.timeout(limit):
            await _collect(proc, out, err)
    except TimeoutError:
        await _stop(proc, out, err, _TERM_GRACE)
        return True
    except asyncio.CancelledError:
        await _stop(proc, out, err, _CANCEL_GRACE)
        raise
    # The attempt is its process group: strays it left running in the background go too.
    _signal_group(proc.pid, signal.SIGKILL)
    return False


async def _stop(
    proc: asyncio.subprocess.Process, out: CappedBuffer, err: CappedBuffer, grace: float
) -> None:
    """SIGTERM the group, give it `grace` seconds, then SIGKILL whatever is left."""
    _signal_group(proc.pid, signal.SIGTERM)
    try:
        await _collect_within(proc, out, err, grace)
    finally:  # even if cancelled again while waiting
        _signal_group(proc.pid, signal.SIGKILL)
    await _collect_within(proc, out, err, _DRAIN_GRACE)


async def _collect_within(
    proc: asyncio.subprocess.Process, out: CappedBuffer, err: CappedBuffer, seconds: float
) -> None:
    with suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await _collect(proc, out, err)


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _output(
    request: ExecutionRequest,
    returncode: int | None,
    out: CappedBuffer,
    err: CappedBuffer,
    duration: float,
) -> TaskOutput:
    stdout = out.text()
    return TaskOutput(
        exit_code=returncode,
        stdout=stdout,
        stderr=err.text(),
        json=None if out.truncated else parse_json(stdout),
        duration=duration,
        attempt=request.attempt,
        stdout_truncated=out.truncated,
        stderr_truncated=err.truncated,
        cap_bytes=request.output_cap,
    )


def _exit_error(code: int | None, stderr: str) -> TaskError:
    if code is not None and code < 0:
        what = f"killed by signal {_signal_name(-code)}"
    else:
        what = f"exited with code {code}"
    tail = last_line(stderr)
    return TaskError(FailureKind.EXIT_CODE, f"{what}: {tail}" if tail else what, exit_code=code)


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return str(number)


def _error(message: str) -> AttemptFailed:
    return AttemptFailed(TaskError(FailureKind.ERROR, message))
