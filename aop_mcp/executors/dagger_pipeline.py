"""The dagger-io side of the `dagger` executor: a connection per session, one container
pipeline per attempt.

Imported only when a dagger task runs, in a thread (the SDK takes seconds and tens of
megabytes to load). dagger's errors stop here: everything else sees ContainerFailed.

`connect` connects to a session and loads its API once; the executor shares the connection
among its attempts (`dagger_sessions`), which query it at the same time. The SDK allows
that: each query is its own HTTP request on httpx's connection pool (the SDK itself sends
several at once to resolve IDs), and a query abandoned by a cancelled attempt closes only
its own HTTP connection. What would not allow it is gql's reconnecting session, which any
SDK retry setting brings: when one request fails to connect it closes the HTTP client and
opens another, cutting every other query in flight and refusing new ones meanwhile. So the
connection has no retries at all (`retry=None`), which also keeps a query from being sent
twice (a retried withExec would run the command again).

Each step of an attempt has its own bound (`Limits`): connecting (once per session), pulling
the image (`sync` of the bare `from` makes the engine pull it now, not when the command
runs), then the command's call, timed from when it is sent. Only that last bound ends as
CommandAbandoned (a timeout); the others fail as ContainerFailed naming the step.

The client is built on an explicit session (port and token) rather than through
`dagger.connection()`, which reads the session from os.environ and otherwise downloads a
CLI. That takes four SDK classes from `dagger.client`'s private modules, kept to
`_connection` (and `disconnect`, which reaches gql's transport).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable

import dagger
import httpx
from dagger.client._config import ConnectConfig
from dagger.client._session import ConnectParams, SingleConnection, TelemetryTransport

from aop_mcp.executors.dagger_engine import Session
from aop_mcp.executors.dagger_executor import (
    CommandAbandoned,
    ContainerFailed,
    ContainerJob,
    ContainerResult,
    Limits,
)

# Each attempt holds an HTTP connection for as long as its command runs: the pool must not
# make an attempt wait for another's to end, its step's clock running. The engine's own
# concurrency limit bounds them instead.
_POOL = httpx.Limits(max_connections=None, max_keepalive_connections=20)


async def connect(session: Session, limit: float) -> SingleConnection:
    """A connection to `session` with its API loaded; ContainerFailed if that fails or
    takes over `limit` seconds."""
    conn = _connection(session, limit)
    overdue = f"the Dagger engine did not answer within {limit:g}s of connecting"
    try:
        # connect() rather than `async with`: entering the connection would also set up
        # the SDK's OpenTelemetry, process-wide.
        await _bounded(conn.connect(), limit, overdue)
    except BaseException:
        await disconnect(conn)
        raise
    return conn


async def disconnect(conn: SingleConnection) -> None:
    """Close a connection made by `connect`, also one whose connecting failed midway."""
    try:
        await conn.close()
    finally:
        # A connect cancelled during introspection leaves gql's transport open and
        # unknown to the SDK's stack, so close() alone would leak its HTTP client.
        await conn.session.client.transport.close()


async def run_job(conn: SingleConnection, job: ContainerJob, limits: Limits) -> ContainerResult:
    """Run `job` on the engine behind `conn`; raise ContainerFailed if the engine fails,
    or a step overruns its limit, and CommandAbandoned if the command's call overruns.

    A command that exits non-zero is a result, not a failure: its exit code, stdout and
    stderr come back like a successful one's. ContainerFailed says `engine_lost` when no
    answer came back at all (refused, reset, not HTTP): the session may be gone.
    """
    return await _run(dagger.Client.from_connection(conn), job, limits)


def _connection(session: Session, limit: float) -> SingleConnection:
    # retry=None: no gql reconnecting session (see the module docstring) and no query sent
    # twice; a task's retry policy is the one place that decides about trying again.
    config = ConnectConfig(timeout=dagger.Timeout(None, connect=limit), retry=None)
    params = ConnectParams(port=session.port, session_token=session.token)
    conn = SingleConnection(params, config)
    conn.session.client.transport.kwargs["transport"] = TelemetryTransport(limits=_POOL)
    return conn


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
        raise _failed(exc) from exc
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
        raise _failed(exc) from exc


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


def _failed(exc: BaseException) -> ContainerFailed:
    text = str(exc).strip() or repr(exc)
    # The SDK's TransportError: gql got no GraphQL answer (refused, reset, not HTTP, 5xx).
    lost = isinstance(exc, dagger.TransportError)
    return ContainerFailed(f"the Dagger engine failed: {text}", engine_lost=lost)
