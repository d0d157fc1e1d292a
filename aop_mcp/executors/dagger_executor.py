"""The `dagger` executor: a task's command in a container, run by a Dagger engine.

An attempt first looks for an engine (`dagger_engine`, without the network): with none, it
fails at once, never retried, saying what is missing. Then it reveals the task's secrets,
loads the SDK (on first use only, in a thread) and runs the pipeline of `dagger_pipeline`:
image, workdir, env, secret variables, files, cache volumes, then the command. Its exit
code, stdout and stderr come back as a local task's do, with the image digest. Attempts
share one engine session and its connection (`dagger_sessions`): the first one opens it
(on the CLI route, by starting `dagger session`), and `aclose` ends it.

Secret values never leave the attempt: they are scrubbed (`***`) out of stdout, stderr,
the JSON parsed from stdout and every error message before anything is returned, also where
the command printed them the way JSON spells them inside a string. Each attempt gets
AOP_RUN_ID, AOP_TASK_ID and AOP_ATTEMPT, which also keeps the engine from reusing an earlier
attempt's result: the hub's own result cache (`cache: true`) decides about reuse.

Getting ready (the engine's start and connecting, once per session; pulling the image) is
bounded step by step (`Limits`), apart from the task's timeout: a cold pull must not use up
a short timeout, nor fail as a timeout that a retry would only repeat. The timeout counts
from when the command is sent, and is enforced twice: inside the container (`timeout`,
which the image must have) so the command's output up to then comes back, and around the
call, `grace` seconds later, so an engine that does not answer cannot hold the attempt's
slot.
"""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from types import ModuleType
from typing import Any

from aop_mcp.errors import SecretKeyMismatch, SecretNotFound
from aop_mcp.executors.capture import cap_text, last_line, parse_json
from aop_mcp.executors.dagger_engine import (
    CLI_START_TIMEOUT,
    Cli,
    EngineStartFailed,
    Session,
    diagnose_engine,
)
from aop_mcp.executors.dagger_sessions import Connector, SharedSession
from aop_mcp.executors.scrub import Scrubber
from aop_mcp.models import FailureKind, TaskError, TaskOutput
from aop_mcp.ports.executor import AttemptFailed, ExecutionRequest, SecretSource

DEFAULT_GRACE = 2.0  # seconds past the task's timeout before the call itself is abandoned
CONNECT_TIMEOUT = 30.0  # seconds to connect to a session and load its API (introspection)
# Seconds the image may take to pull: generous, since a cold pull of a large image over a
# slow link takes minutes, yet bounded, so a registry that never answers frees the slot.
PULL_TIMEOUT = 600.0
KILL_AFTER = 1  # seconds `timeout` gives the command between SIGTERM and SIGKILL
# What `timeout` exits with when it stopped the command: 124, or 128 + SIGKILL / SIGTERM.
_TIMED_OUT = frozenset({124, 137, 143})
_PIPELINE = "aop_mcp.executors.dagger_pipeline"


@dataclass(frozen=True, slots=True)
class Limits:
    """How long each step of an attempt may take, in seconds.

    A step that overruns fails the attempt as an error saying which step it was; only `run`,
    the command's own call, ends as a timeout.
    """

    start: float = CLI_START_TIMEOUT  # `dagger session` gives a session (the CLI route)
    connect: float = CONNECT_TIMEOUT  # the SDK connects and loads the API (once a session)
    pull: float = PULL_TIMEOUT  # the image is pulled and its digest known
    run: float | None = None  # from when the command is sent: the task's timeout + grace


@dataclass(frozen=True, slots=True)
class ContainerJob:
    """What one attempt asks the engine to run (templates rendered, secrets revealed)."""

    image: str
    argv: list[str]
    env: dict[str, str]
    secrets: dict[str, str] = field(repr=False)  # variable name: value
    secret_prefix: str  # engine-side secret names are unique to the attempt
    workdir: str | None
    files: dict[str, str]
    cache_volumes: dict[str, str]  # volume name: mount path


@dataclass(frozen=True, slots=True)
class ContainerResult:
    exit_code: int
    stdout: str
    stderr: str
    image_ref: str | None  # e.g. docker.io/library/python:3.12-slim@sha256:...
    duration: float  # seconds from when the command was sent


class ContainerFailed(Exception):
    """The engine could not run the job (as opposed to the command failing inside it).

    `engine_lost`: no answer came back at all (refused, reset), so the session may be gone.
    """

    def __init__(self, message: str, *, engine_lost: bool = False) -> None:
        super().__init__(message)
        self.engine_lost = engine_lost


class CommandAbandoned(Exception):
    """The command's call outlived `Limits.run`: the engine stopped answering."""


JobRunner = Callable[[Any, ContainerJob, Limits], Awaitable[ContainerResult]]


@dataclass(frozen=True, slots=True)
class _Pipeline:
    """`dagger_pipeline`, once loaded: how to connect to a session and run a job on it."""

    connector: Connector
    run_job: JobRunner


class DaggerExecutor:
    """Runs `dagger` tasks (DaggerRun) on the engine `engine_env` leads to.

    `engine_env` is `Settings.dagger_env` (the `dagger` CLI, when one is started, gets only
    its allowed variables); `secrets` reveals the hub's secrets; `grace` is how long past a
    task's timeout the call may take; `limits` bounds the steps before the command.
    Call `aclose` when done with it: it ends the session its attempts shared.
    """

    name = "dagger"
    version = "1"

    def __init__(
        self,
        engine_env: Mapping[str, str],
        secrets: SecretSource | None = None,
        *,
        grace: float = DEFAULT_GRACE,
        limits: Limits | None = None,
    ) -> None:
        self._engine_env = dict(engine_env)
        self._secrets = secrets
        self._grace = grace
        self._limits = limits or Limits()
        self._pipeline: _Pipeline | None = None
        self._session = SharedSession(self._engine_env, self._limits.start)

    async def cache_facts(self, spec: Any) -> dict[str, Any]:
        """The revisions of the secrets the task uses (never their values): setting a secret
        again, even after deleting it, makes the task's cached result stale."""
        if not spec.secrets:
            return {}
        return {"secrets": {name: await self._secret(name, reveal=False) for name in spec.secrets}}

    async def execute(self, request: ExecutionRequest) -> TaskOutput:
        """Run one attempt; return its output or raise AttemptFailed."""
        diagnosis = await asyncio.to_thread(diagnose_engine, self._engine_env)
        if diagnosis.route is None:
            raise _failed(FailureKind.MISCONFIGURED, diagnosis.problem())
        secrets = {name: await self._secret(name, reveal=True) for name in request.spec.secrets}
        job = _job(request, secrets)
        scrubber = Scrubber(secrets.values())
        pipeline = await self._loaded()  # loading the SDK is not the task's time
        limits = self._limits_for(request.timeout)
        try:
            result = await self._call(pipeline, diagnosis.route, job, limits)
        except CommandAbandoned:
            raise self._abandoned(request.timeout) from None
        except (ContainerFailed, EngineStartFailed) as exc:
            raise _failed(FailureKind.ERROR, scrubber.text(str(exc))) from None
        return _settled(request, result, scrubber)

    def _limits_for(self, timeout: float | None) -> Limits:
        return replace(self._limits, run=None if timeout is None else timeout + self._grace)

    async def aclose(self) -> None:
        """End the shared session: its connection, and the `dagger session` started for it
        (waiting for it to exit). Attempts after this open a new one."""
        await self._session.aclose()

    async def _call(
        self, pipeline: _Pipeline, route: Session | Cli, job: ContainerJob, limits: Limits
    ) -> ContainerResult:
        async with self._session.use(route, pipeline.connector) as link:
            try:
                return await pipeline.run_job(link.connection, job, limits)
            except ContainerFailed as exc:
                if exc.engine_lost:
                    self._session.lose(link)
                raise

    def _abandoned(self, timeout: float | None) -> AttemptFailed:
        assert timeout is not None  # `Limits.run`, the only bound that abandons, comes from it
        message = (
            f"timed out after {timeout:g}s: the engine had not answered {self._grace:g}s later"
        )
        return _failed(FailureKind.TIMEOUT, message)

    async def _loaded(self) -> _Pipeline:
        if self._pipeline is None:
            module = await asyncio.to_thread(importlib.import_module, _PIPELINE)
            self._pipeline = self._pipeline_of(module)
        return self._pipeline

    def _pipeline_of(self, module: ModuleType) -> _Pipeline:
        async def connect(session: Session) -> object:
            return await module.connect(session, self._limits.connect)

        return _Pipeline(Connector(connect, module.disconnect), module.run_job)

    async def _secret(self, name: str, *, reveal: bool) -> str:
        """A secret's value (`reveal`) or its revision; a missing one fails the attempt."""
        if self._secrets is None:
            message = f"the task uses secret {name!r}, but this engine has no secret store"
            raise _failed(FailureKind.MISCONFIGURED, message)
        try:
            if reveal:
                return await self._secrets.reveal(name)
            return await self._secrets.revision(name)
        except SecretNotFound:
            message = (
                f"the task uses secret {name!r}, which is not set; set it (`aop secret set "
                f"{name}`, the secret_set tool or PUT /api/v1/secrets/{name}), then replay"
            )
            raise _failed(FailureKind.MISCONFIGURED, message) from None
        except SecretKeyMismatch as exc:
            raise _failed(FailureKind.MISCONFIGURED, str(exc)) from None


def wrapped_command(command: list[str], timeout: float | None) -> list[str]:
    """The command under `timeout` inside the container, when the task has a timeout."""
    if timeout is None:
        return list(command)
    seconds = f"{timeout:.3f}".rstrip("0").rstrip(".")
    return ["timeout", "-k", str(KILL_AFTER), seconds, *command]


def _job(request: ExecutionRequest, secrets: dict[str, str]) -> ContainerJob:
    spec = request.spec
    env = {
        **spec.env,
        "AOP_RUN_ID": request.run_id,
        "AOP_TASK_ID": request.task_id,
        "AOP_ATTEMPT": str(request.attempt),
    }
    return ContainerJob(
        image=spec.image,
        argv=wrapped_command(spec.command, request.timeout),
        env=env,
        secrets=secrets,
        secret_prefix=f"aop-{request.run_id}-{request.task_id}-{request.attempt}-",
        workdir=spec.workdir,
        files=dict(spec.files),
        cache_volumes=dict(spec.cache_volumes),
    )


def _settled(request: ExecutionRequest, result: ContainerResult, scrubber: Scrubber) -> TaskOutput:
    """The attempt's output, or AttemptFailed carrying it when the command failed."""
    output = _output(request, result, scrubber)
    code = result.exit_code
    timeout = request.timeout
    if timeout is not None and code in _TIMED_OUT and result.duration >= timeout:
        raise AttemptFailed(TaskError(FailureKind.TIMEOUT, f"timed out after {timeout:g}s"), output)
    if code != 0:
        tail = last_line(output.stderr)
        message = f"exited with code {code}: {tail}" if tail else f"exited with code {code}"
        raise AttemptFailed(TaskError(FailureKind.EXIT_CODE, message, exit_code=code), output)
    return output


def _output(request: ExecutionRequest, result: ContainerResult, scrubber: Scrubber) -> TaskOutput:
    cap = request.output_cap
    stdout, stdout_cut = cap_text(scrubber.text(result.stdout), cap)
    stderr, stderr_cut = cap_text(scrubber.text(result.stderr), cap)
    return TaskOutput(
        exit_code=result.exit_code,
        stdout=stdout,
        stderr=stderr,
        json=None if stdout_cut else scrubber.parsed(parse_json(stdout)),
        duration=result.duration,
        attempt=request.attempt,
        stdout_truncated=stdout_cut,
        stderr_truncated=stderr_cut,
        cap_bytes=cap,
        image_digest=image_digest(result.image_ref),
    )


def image_digest(image_ref: str | None) -> str | None:
    """The digest part (`sha256:...`) of an image reference, if it has one."""
    if not image_ref or "@" not in image_ref:
        return None
    return image_ref.rpartition("@")[2] or None


def _failed(kind: FailureKind, message: str) -> AttemptFailed:
    return AttemptFailed(TaskError(kind, message))
