"""The dagger-io side of the `dagger` executor: one container pipeline per attempt.

Imported only when a dagger task runs, in a thread (the SDK takes seconds and tens of
megabytes to load). dagger's errors stop here: everything else sees ContainerFailed.

Each step has its own bound (`Limits`): connecting, pulling the image (`sync` of the bare
`from` makes the engine pull it now, not when the command runs), then the command's call,
timed from when it is sent. Only that last bound ends as CommandAbandoned (a timeout); the
others fail as ContainerFailed naming the step.

The client is built on an explicit session (port and token) rather than through
`dagger.connection()`, which reads the session from os.environ and otherwise downloads a
CLI. That takes three SDK classes from `dagger.client`'s private modules, kept to
`_connection`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable

import dagger
from dagger.client._config import ConnectConfig
from dagger.client._session import ConnectParams, SingleConnection

from aop_mcp.executors.dagger_engine import Session
from aop_mcp.executors.dagger_executor import (
    CommandAbandoned,
    ContainerFailed,
    ContainerJob,
    ContainerResult,
    Limits,
)


async def run_job(session: Session, job: ContainerJob, limits: Limits) -> ContainerResult:
    """Run `job` on the engine behind `session`; raise ContainerFailed if the engine fails,
    or a step overruns its limit, and CommandAbandoned if the command's call overruns.

    A command that exits non-zero is a result, not a failure: its exit code, stdout and
    stderr come back like a successful one's.
    """
    conn = _connection(session, limits.connect)
    try:
        overdue = f"the Dagger engine did not answer within {limits.connect:g}s of connecting"
        # connect() rather than `async with`: entering the connection would also set up
        # the SDK's OpenTelemetry, process-wide.
        await _bounded(conn.connect(), limits.connect, overdue)
        return await _run(dagger.Client.from_connection(conn), job, limits)
    finally:
        await conn.close()


def _connection(session: Session, connect: float) -> SingleConnection:
    # execute=False: a query is never sent twice (a retried withExec would run the command
    # again); connect=False: the engine was just found answering, and a task's retry policy
    # is the one place that decides about trying again.
    config = ConnectConfig(
        timeout=dagger.Timeout(None, connect=connect),
        retry=dagger.Retry(connect=False, execute=False),
    )
    return SingleConnection(ConnectParams(port=session.port, session_token=session.token), config)


async def _run(client: dagger.Client, job: ContainerJob, limits: Limits) -> ContainerResult:
    base = client.container().from_(job.image)
    overdue = (
        f"pulling the image {job.image} took over {limits.pull:g}s (the task's timeout counts "
        "only from when its command starts)"
    )
    image_ref = await _bounded(_pulled(base), limits.pull, overdue)
    started = time.monotonic()
    timer = asyncio.timeout(limits.run)
    try:
        async with timer:
            code, stdout, stderr = await _executed(_prepared(client, base, job), job.argv)
    except Exception as exc:
        if timer.expired():
            raise CommandAbandoned from None
        raise ContainerFailed(_describe(exc)) from exc
    return ContainerResult(code, stdout, stderr, image_ref, time.monotonic() - started)


async def _pulled(base: dagger.Container) -> str:
    """The image's reference with its digest, once the engine has pulled it."""
    await base.sync()
    return await base.image_ref()  # only answered right after `from`


async def _executed(ctr: dagger.Container, argv: list[str]) -> tuple[int, str, str]:
    command = ctr.with_exec(argv, expect=dagger.ReturnType.ANY)
    try:
        done = await command.sync()  # runs it once; the reads below load the result by id
    except dagger.ExecError as exc:  # codes even ANY refuses: killed by a signal
        return exc.exit_code, exc.stdout, exc.stderr
    return await done.exit_code(), await done.stdout(), await done.stderr()


async def _bounded[T](step: Awaitable[T], seconds: float, overdue: str) -> T:
    """`step`'s result; ContainerFailed saying `overdue` when it takes over `seconds`."""
    timer = asyncio.timeout(seconds)
    try:
        async with timer:
            return await step
    except Exception as exc:
        # The SDK raises its own errors, gql's, graphql's, httpx's and OSError: whichever it
        # is, the call to the engine failed. The executor scrubs secrets out of the message.
        if timer.expired():
            raise ContainerFailed(overdue) from None
        raise ContainerFailed(_describe(exc)) from exc


def _prepared(client: dagger.Client, ctr: dagger.Container, job: ContainerJob) -> dagger.Container:
    """The container as the command must find it: workdir, variables, files, caches."""
    if job.workdir is not None:
        ctr = ctr.with_workdir(job.workdir)
    for name, value in job.env.items():
        ctr = ctr.with_env_variable(name, value)
    for name, value in job.secrets.items():
        secret = client.set_secret(f"{job.secret_prefix}{name}", value)
        ctr = ctr.with_secret_variable(name, secret)
    for path, contents in job.files.items():
        ctr = ctr.with_new_file(path, contents)
    for volume, path in job.cache_volumes.items():
        ctr = ctr.with_mounted_cache(path, client.cache_volume(volume))
    return ctr


def _describe(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"the Dagger engine failed: {text}" if text else f"the Dagger engine failed: {exc!r}"
