"""Finding a Dagger engine without the network, and starting a session on it.

Shared by the Dagger executor (a task fails at once, and says why, when there is no engine)
and by `aop doctor` (which prints the same diagnosis). This module never imports dagger:
the SDK costs seconds and tens of megabytes to load, and knowing whether an engine is there
must not. The routes, in the order the SDK itself uses them:

1. a running session, as `dagger run ...` provides: DAGGER_SESSION_PORT and
   DAGGER_SESSION_TOKEN. It counts when 127.0.0.1:PORT accepts a TCP connection.
2. a `dagger` CLI on PATH that has a runner: `_EXPERIMENTAL_DAGGER_RUNNER_HOST` (a remote
   engine, taken on trust, since checking it would need the network), or a Docker or Podman
   daemon whose local socket accepts a connection (or a remote DOCKER_HOST/CONTAINER_HOST).

With neither, the SDK would download a CLI from the internet; the executor never lets it.
A CLI is started with an environment of its own (`cli_environment`), never the hub's.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
from collections.abc import Mapping
from contextlib import suppress
from dataclasses import dataclass, field
from importlib import metadata

from aop_mcp.config import DAGGER_CLI_VARIABLES, DAGGER_VARIABLES

CONNECT_TIMEOUT = 0.5  # seconds a local socket may take to accept: loopback answers at once
CLI_START_TIMEOUT = 300.0  # `dagger session` may first start (and pull) an engine container
CLI_END_GRACE = 10.0  # after stdin closes, how long the CLI may take to flush and exit
_TAIL = 4096  # bytes of the CLI's stderr kept to explain a failed start
_CLI_VARIABLES = frozenset((*DAGGER_VARIABLES, *DAGGER_CLI_VARIABLES))

SESSION_FIX = (
    "start the session again (`dagger run aop serve`), or unset DAGGER_SESSION_PORT and "
    "DAGGER_SESSION_TOKEN"
)
NO_ENGINE_FIX = (
    "run the hub inside `dagger run` (e.g. `dagger run aop serve`), or install the dagger "
    "CLI on PATH with Docker or Podman running, or set _EXPERIMENTAL_DAGGER_RUNNER_HOST to a "
    "remote engine (tcp://HOST:PORT)"
)
RUNNER_FIX = (
    "start Docker (or Podman's socket: `systemctl --user start podman.socket`), or set "
    "_EXPERIMENTAL_DAGGER_RUNNER_HOST to a remote engine (tcp://HOST:PORT)"
)


class EngineStartFailed(Exception):
    """`dagger session` did not give a session (it exited, or printed something else)."""


@dataclass(frozen=True, slots=True)
class Session:
    """An engine session: GraphQL at http://127.0.0.1:PORT/query, with the token as user."""

    port: int
    token: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class Cli:
    """A `dagger` CLI that starts a session of its own on `runner` (as shown to people)."""

    path: str
    runner: str


@dataclass(frozen=True, slots=True)
class Diagnosis:
    """Where the engine is (`route`), or what is missing (`detail`) and how to fix it."""

    route: Session | Cli | None
    detail: str
    fix: str = ""

    @property
    def found(self) -> bool:
        """Whether there is a route to an engine."""
        return self.route is not None

    def problem(self) -> str:
        """The message a dagger task fails with when there is no engine."""
        return f"no Dagger engine for this task: {self.detail}; to provide one, {self.fix}"


def diagnose_engine(env: Mapping[str, str]) -> Diagnosis:
    """Find an engine from DAGGER_VARIABLES (`config.dagger_environment`), locally only."""
    port, token = env.get("DAGGER_SESSION_PORT"), env.get("DAGGER_SESSION_TOKEN")
    if port or token:
        return _session(port, token)
    cli = shutil.which("dagger", path=env.get("PATH", ""))
    if cli is None:
        detail = "no DAGGER_SESSION_PORT/DAGGER_SESSION_TOKEN session and no `dagger` CLI on PATH"
        return Diagnosis(None, detail, NO_ENGINE_FIX)
    runner = env.get("_EXPERIMENTAL_DAGGER_RUNNER_HOST")
    if runner:
        where = f"_EXPERIMENTAL_DAGGER_RUNNER_HOST={runner}"
        return Diagnosis(Cli(cli, where), f"dagger CLI {cli} with {where}")
    found, tried = _container_runtime(env)
    if found is not None:
        return Diagnosis(Cli(cli, found), f"dagger CLI {cli} with {found}")
    detail = (
        f"dagger CLI {cli} has no runner: _EXPERIMENTAL_DAGGER_RUNNER_HOST is not set and "
        f"no container runtime answers ({'; '.join(tried)})"
    )
    return Diagnosis(None, detail, RUNNER_FIX)


def _session(port: str | None, token: str | None) -> Diagnosis:
    if not (port and token):
        missing = "DAGGER_SESSION_TOKEN" if port else "DAGGER_SESSION_PORT"
        return Diagnosis(
            None, f"{missing} is not set, but the other session variable is", SESSION_FIX
        )
    try:
        number = int(port)
        if not 0 < number < 65536:
            raise ValueError(port)
    except ValueError:
        return Diagnosis(None, f"DAGGER_SESSION_PORT={port!r} is not a port number", SESSION_FIX)
    refusal = _refusal(socket.AF_INET, ("127.0.0.1", number))
    if refusal is not None:
        detail = f"the session on 127.0.0.1:{number} does not answer ({refusal})"
        return Diagnosis(None, detail, SESSION_FIX)
    return Diagnosis(Session(number, token), f"session on 127.0.0.1:{number} accepts connections")


def _container_runtime(env: Mapping[str, str]) -> tuple[str | None, list[str]]:
    """A runtime the CLI can start an engine container with, and what was tried."""
    tried: list[str] = []
    for program, hosts in (("docker", _docker_hosts(env)), ("podman", _podman_hosts(env))):
        if shutil.which(program, path=env.get("PATH", "")) is None:
            tried.append(f"no {program} on PATH")
            continue
        for host in hosts:
            if not host.startswith("unix://"):
                return f"{program} at {host} (not checked: it is not local)", tried
            path = host.removeprefix("unix://")
            refusal = _refusal(socket.AF_UNIX, path)
            if refusal is None:
                return f"{program} ({path})", tried
            tried.append(f"{program}: {path}: {refusal}")
    return None, tried


def _docker_hosts(env: Mapping[str, str]) -> list[str]:
    return [env.get("DOCKER_HOST") or "unix:///var/run/docker.sock"]


def _podman_hosts(env: Mapping[str, str]) -> list[str]:
    if env.get("CONTAINER_HOST"):
        return [env["CONTAINER_HOST"]]
    runtime = env.get("XDG_RUNTIME_DIR")
    rootless = [f"unix://{runtime}/podman/podman.sock"] if runtime else []
    return [*rootless, "unix:///run/podman/podman.sock"]


def _refusal(family: socket.AddressFamily, address: object) -> str | None:
    """Why a local socket does not accept a connection; None when it does."""
    try:
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.settimeout(CONNECT_TIMEOUT)
            sock.connect(address)  # type: ignore[arg-type]
    except OSError as exc:
        return exc.strerror or str(exc) or type(exc).__name__
    return None


# --- a session of the CLI's own ---------------------------------------------------------------


def cli_environment(env: Mapping[str, str]) -> dict[str, str]:
    """The environment `dagger session` runs with: only the variables of `env` that are
    DAGGER_VARIABLES or DAGGER_CLI_VARIABLES (config.py), whatever else `env` holds."""
    return {name: value for name, value in env.items() if name in _CLI_VARIABLES}


class CliSession:
    """A `dagger session` started by `start_cli_session`: its session, until `end()`.

    It lives as long as its owner keeps it (the Dagger executor shares one between
    attempts), so both of the CLI's pipes are read for its whole life: a full pipe would
    block it mid-session.
    """

    def __init__(
        self,
        proc: asyncio.subprocess.Process,
        session: Session,
        readers: list[asyncio.Task[None]],
    ) -> None:
        self.session = session
        self._proc = proc
        self._readers = readers

    @property
    def exited(self) -> bool:
        """Whether the CLI has ended, and its session with it."""
        return self._proc.returncode is not None

    async def answers(self) -> bool:
        """Whether the CLI is running and its session's port accepts a connection.

        The port closes the moment the CLI dies, before the exit is noticed here.
        """
        if self.exited:
            return False
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT):
                _, writer = await asyncio.open_connection("127.0.0.1", self.session.port)
        except (OSError, TimeoutError):
            return False
        writer.close()
        with suppress(OSError):
            await writer.wait_closed()
        return True

    async def end(self) -> None:
        """End the session (stdin closed), killing the CLI if it lingers; wait for it."""
        await _end(self._proc, self._readers)


async def start_cli_session(
    cli: Cli, env: Mapping[str, str], *, start_timeout: float = CLI_START_TIMEOUT
) -> CliSession:
    """Start `dagger session` with `cli_environment(env)` and return it once it gives its
    session; raise EngineStartFailed (the CLI ended) if it does not.

    Spawned here rather than by the SDK so the path found on PATH is used (the SDK reads only
    `_EXPERIMENTAL_DAGGER_CLI_BIN`, else downloads one) and so a cancelled or timed-out
    start is never stuck waiting on a thread that reads the CLI's output. An inherited
    environment would hand the CLI, and whatever it starts, the hub's token and secret key.
    """
    proc = await asyncio.create_subprocess_exec(
        cli.path,
        *_session_arguments(),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=cli_environment(env),
    )
    tail = bytearray()
    readers = [asyncio.create_task(_keep_tail(proc, tail))]
    try:
        session = await _first_session(proc, tail, start_timeout)
    except BaseException:  # also cancelled: the CLI must not outlive a start nobody awaits
        await _end(proc, readers)
        raise
    readers.append(asyncio.create_task(_discard(proc.stdout)))
    return CliSession(proc, session, readers)


async def _first_session(
    proc: asyncio.subprocess.Process, tail: bytearray, start_timeout: float
) -> Session:
    """The session the CLI prints as its first line of JSON (port and token)."""
    try:
        async with asyncio.timeout(start_timeout):
            line = await proc.stdout.readline() if proc.stdout else b""
    except TimeoutError as exc:
        message = (
            f"the Dagger engine did not start: `dagger session` gave no session within "
            f"{start_timeout:g}s (it may still be pulling the engine's image)"
        )
        raise EngineStartFailed(message) from exc
    try:
        params = json.loads(line)
        return Session(int(params["port"]), str(params["session_token"]))
    except (ValueError, TypeError, KeyError):
        exited = await _exit_code(proc)
    said = bytes(tail).decode(errors="replace").strip().splitlines()
    why = f"exited with code {exited}" if exited is not None else "printed no session"
    raise EngineStartFailed(f"`dagger session` {why}" + (f": {said[-1]}" if said else ""))


def _session_arguments() -> list[str]:
    try:
        version = metadata.version("dagger-io")
    except metadata.PackageNotFoundError:
        version = "n/a"
    labels = ["dagger.io/sdk.name:python", f"dagger.io/sdk.version:{version}"]
    return ["session", *(part for label in labels for part in ("--label", label))]


async def _exit_code(proc: asyncio.subprocess.Process) -> int | None:
    """The CLI's exit code if it has ended (no session line means it probably has)."""
    with suppress(TimeoutError):
        async with asyncio.timeout(1.0):
            await proc.wait()
    return proc.returncode


async def _keep_tail(proc: asyncio.subprocess.Process, tail: bytearray) -> None:
    while proc.stderr is not None and (chunk := await proc.stderr.read(65536)):
        tail.extend(chunk)
        del tail[:-_TAIL]


async def _discard(stream: asyncio.StreamReader | None) -> None:
    while stream is not None and await stream.read(65536):
        pass


async def _end(proc: asyncio.subprocess.Process, readers: list[asyncio.Task[None]]) -> None:
    """Close the CLI's stdin (how it is told to end), then kill it if it lingers."""
    if proc.stdin is not None:
        proc.stdin.close()
    try:
        async with asyncio.timeout(CLI_END_GRACE):
            await proc.wait()
    except TimeoutError:
        pass
    finally:  # also when cancelled while waiting
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        for reader in readers:
            reader.cancel()
