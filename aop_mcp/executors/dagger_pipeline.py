"""The dagger-io side of the `dagger` executor: one container pipeline per attempt.

Imported only when a dagger task runs, in a thread (the SDK takes seconds and tens of
megabytes to load). dagger's errors stop here: everything else sees ContainerFailed.

The client is built on an explicit session (port and token) rather than through
`dagger.connection()`, which reads the session from os.environ and otherwise downloads a
CLI. That takes three SDK classes from `dagger.client`'s private modules, kept to
`_connection`.
"""

from __future__ import annotations

import dagger
from dagger.client._config import ConnectConfig
from dagger.client._session import ConnectParams, SingleConnection

from aop_mcp.executors.dagger_engine import Session
from aop_mcp.executors.dagger_executor import ContainerFailed, ContainerJob, ContainerResult

CONNECT_TIMEOUT = 10.0  # seconds to open the HTTP connection; the attempt's timeout bounds the rest


async def run_job(session: Session, job: ContainerJob) -> ContainerResult:
    """Run `job` on the engine behind `session`; raise ContainerFailed if the engine fails.

    A command that exits non-zero is a result, not a failure: its exit code, stdout and
    stderr come back like a successful one's.
    """
    conn = _connection(session)
    try:
        # connect() rather than `async with`: entering the connection would also set up
        # the SDK's OpenTelemetry, process-wide.
        await conn.connect()
        return await _run(dagger.Client.from_connection(conn), job)
    except Exception as exc:
        # The SDK raises its own errors, gql's, graphql's, httpx's and OSError: whichever it
        # is, the call to the engine failed. The executor scrubs secrets out of the message.
        raise ContainerFailed(_describe(exc)) from exc
    finally:
        await conn.close()


def _connection(session: Session) -> SingleConnection:
    # execute=False: a query is never sent twice (a retried withExec would run the command
    # again); connect=False: the engine was just found answering, and a task's retry policy
    # is the one place that decides about trying again.
    config = ConnectConfig(
        timeout=dagger.Timeout(None, connect=CONNECT_TIMEOUT),
        retry=dagger.Retry(connect=False, execute=False),
    )
    return SingleConnection(ConnectParams(port=session.port, session_token=session.token), config)


async def _run(client: dagger.Client, job: ContainerJob) -> ContainerResult:
    base = client.container().from_(job.image)
    image_ref = await base.image_ref()  # only answered right after `from`
    command = _prepared(client, base, job).with_exec(job.argv, expect=dagger.ReturnType.ANY)
    try:
        done = await command.sync()  # runs it once; the reads below load the result by id
    except dagger.ExecError as exc:  # codes even ANY refuses: killed by a signal
        return ContainerResult(exc.exit_code, exc.stdout, exc.stderr, image_ref)
    return ContainerResult(
        await done.exit_code(), await done.stdout(), await done.stderr(), image_ref
    )


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
