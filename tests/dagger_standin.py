"""DaggerStandIn: a TEST DOUBLE of a Dagger engine session, for the `dagger` executor's tests.

It is not an engine. It serves Dagger's GraphQL API, built from Dagger's published schema
(`../shared/dagger/schema.graphqls`, test data outside the project), over HTTP on 127.0.0.1
as a `dagger run` session does: `POST /query` with the session token as Basic auth user.
Every query is validated against the schema; an invalid one is answered with errors and
recorded in `invalid`, which the tests assert is empty, so the SDK calls the executor makes
must be ones a real engine accepts.

Its resolvers model a container pipeline just far enough for the executor's: `container`,
`from` (the image is only recorded; `imageRef` gives it a made-up digest; the first
`imageRef`, `sync` or exec of an image "pulls" it, which takes `pull_seconds`), `withWorkdir`,
`withEnvVariable`, `setSecret` + `withSecretVariable`, `withNewFile`, `cacheVolume` +
`withMountedCache`, `withExec`, then `sync` and `node(id)` for `exitCode`, `stdout` and
`stderr` (`sync` of a container without an exec only pulls its image). A field it does not
model is an error too.

"Running" a container runs its command on this host under bubblewrap, which gives it the
container's view: the host's /usr and /etc read-only in place of the image, the workdir and
written files at their container paths, cache volumes (directories kept for the stand-in's
life) at their mount paths, only the container's variables, and no network. Each exec is
recorded in `execs`. An exec whose arguments include `stall_marker` never finishes until
`release()`, like an engine that stopped answering.

`session_cli` writes a fake `dagger` CLI whose `dagger session` serves the stand-in on a port
of its own (it forwards every connection), as a real session does: when that process dies,
its port refuses connections and those open through it are cut. Each start is recorded.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import hashlib
import os
import shutil
import signal
import sys
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from inspect import isawaitable
from pathlib import Path
from typing import Any

import graphql
import pytest
from servers import serve_in_loop
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "shared" / "dagger" / "schema.graphqls"
IMAGE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_SYSTEM = ("/usr", "/bin", "/lib", "/lib64", "/sbin", "/etc")
# Exit codes `expect` accepts (ReturnType); outside them an exec is an EXEC_ERROR.
_EXPECTED = {
    "SUCCESS": lambda code: code == 0,
    "FAILURE": lambda code: 1 <= code <= 127 or 192 <= code <= 255,
    "ANY": lambda code: 0 <= code <= 127 or 192 <= code <= 255,
}


def load_schema() -> graphql.GraphQLSchema | None:
    """Dagger's schema, or None where the shared test data is absent."""
    return graphql.build_schema(SCHEMA_PATH.read_text()) if SCHEMA_PATH.is_file() else None


SCHEMA = load_schema()
HAS_BWRAP = shutil.which("bwrap") is not None


@asynccontextmanager
async def serving_standin(root: Path) -> AsyncIterator[tuple[DaggerStandIn, int]]:
    """A stand-in served on 127.0.0.1 (and its port); skips the test where it cannot run.

    When the block ends it must have seen only valid queries with the right token.
    """
    if SCHEMA is None:
        pytest.skip(f"Dagger's schema is not here ({SCHEMA_PATH}): the stand-in needs it")
    if not HAS_BWRAP:
        pytest.skip("the Dagger stand-in runs containers under bubblewrap: not installed")
    standin = DaggerStandIn(SCHEMA, root)
    async with serve_in_loop(standin.app, before_shutdown=standin.release) as server:
        yield standin, server.port
    assert standin.invalid == [], f"queries Dagger's schema rejects: {standin.invalid}"
    assert standin.refused == 0, "requests without the session token"


@dataclass(frozen=True, slots=True)
class SecretValue:
    name: str
    plaintext: str


@dataclass(frozen=True, slots=True)
class Volume:
    key: str


@dataclass(frozen=True, slots=True)
class ExecResult:
    exit_code: int
    stdout: str
    stderr: str


@dataclass(slots=True)
class Container:
    """One container state; every with* field makes a new one, as the API does."""

    image: str | None = None
    workdir: str = "/"
    env: dict[str, str] = field(default_factory=dict)
    secrets: dict[str, SecretValue] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)  # absolute path: contents
    mounts: dict[str, str] = field(default_factory=dict)  # path: volume key
    args: list[str] | None = None
    expect: str = "SUCCESS"
    result: ExecResult | None = None  # set once its exec ran

    def but(self, **changes: Any) -> Container:
        return dataclasses.replace(self, result=None, **changes)

    def at(self, path: str) -> str:
        """A container path, relative ones taken from the workdir."""
        return path if path.startswith("/") else f"{self.workdir.rstrip('/')}/{path}"


@dataclass(frozen=True, slots=True)
class ExecRecord:
    """What the stand-in was asked to run: the executor's whole pipeline, as received."""

    image: str | None
    args: list[str]
    workdir: str
    env: dict[str, str]
    secrets: dict[str, str]  # variable: plaintext
    files: dict[str, str]
    mounts: dict[str, str]


class DaggerStandIn:
    """A test double of an engine session (see the module docstring). Serve `app`."""

    def __init__(self, schema: graphql.GraphQLSchema, root: Path, *, token: str = "t0ken"):
        self.schema = schema
        self.token = token
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.stall_marker = "aop-standin-stall"
        self.pull_seconds = 0.0  # how long an image's first use takes, as a cold pull does
        self.pulled: set[str] = set()  # images pulled so far
        self.queries: list[str] = []
        self.introspections = 0  # schema introspections answered: one per SDK connection
        self.invalid: list[str] = []  # validation errors: must stay empty
        self.refused = 0  # requests without the right token
        self.execs: list[ExecRecord] = []
        self._objects: dict[str, Any] = {}
        self._released = asyncio.Event()
        self.exec_started = asyncio.Event()  # set when any exec is received
        self._introspection: dict[str, dict[str, Any]] = {}
        self.app = Starlette(routes=[Route("/query", self._query, methods=["POST"])])

    def session_env(self, port: int) -> dict[str, str]:
        """The variables `dagger run` would set for a session on `port`."""
        return {"DAGGER_SESSION_PORT": str(port), "DAGGER_SESSION_TOKEN": self.token}

    def release(self) -> None:
        """End every stalled exec (they fail): lets the server shut down."""
        self._released.set()

    # --- HTTP and GraphQL ---------------------------------------------------------------

    async def _query(self, request: Request) -> Response:
        expected = "Basic " + base64.b64encode(f"{self.token}:".encode()).decode()
        if request.headers.get("authorization") != expected:
            self.refused += 1
            return JSONResponse({"errors": [{"message": "unauthorized"}]}, status_code=401)
        source = (await request.json())["query"]
        self.queries.append(source)
        self.introspections += "__schema" in source
        if source in self._introspection:
            return JSONResponse(self._introspection[source])
        body = await self._answer(source)
        if "__schema" in source and "errors" not in body:
            self._introspection[source] = body
        return JSONResponse(body)

    async def _answer(self, source: str) -> dict[str, Any]:
        try:
            document = graphql.parse(source)
        except graphql.GraphQLError as exc:
            self.invalid.append(exc.message)
            return {"errors": [exc.formatted]}
        problems = graphql.validate(self.schema, document)
        if problems:
            self.invalid.extend(problem.message for problem in problems)
            return {"errors": [problem.formatted for problem in problems]}
        result = graphql.execute(
            self.schema,
            document,
            root_value=self,
            field_resolver=self._resolve,
            type_resolver=_type_name,
        )
        if isawaitable(result):
            result = await result
        body: dict[str, Any] = {"data": result.data}
        if result.errors:
            body["errors"] = [error.formatted for error in result.errors]
        return body

    def _resolve(self, source: Any, info: graphql.GraphQLResolveInfo, **args: Any) -> Any:
        owner = {DaggerStandIn: "query", Container: "container"}.get(type(source), "object")
        resolver = getattr(self, f"_{owner}_{info.field_name}", None)
        if resolver is None:
            raise graphql.GraphQLError(
                f"the stand-in does not model {info.parent_type.name}.{info.field_name}"
            )
        return resolver(source, **args)

    def _remember(self, kind: str, value: Any) -> str:
        identity = f"{kind}:{len(self._objects) + 1}"
        self._objects[identity] = value
        return identity

    # --- Query ---------------------------------------------------------------------------

    def _query_version(self, _: Any) -> str:
        return "v0.21.8-standin"

    def _query_container(self, _: Any, platform: str | None = None) -> Container:
        return Container()

    def _query_setSecret(self, _: Any, name: str, plaintext: str) -> SecretValue:
        return SecretValue(name, plaintext)

    def _query_cacheVolume(self, _: Any, key: str, **__: Any) -> Volume:
        (self.root / "volumes" / key).mkdir(parents=True, exist_ok=True)
        return Volume(key)

    def _query_node(self, _: Any, id: str) -> Any:
        return self._objects[id]

    def _object_id(self, source: Any) -> str:
        return self._remember(type(source).__name__, source)

    # --- Container -----------------------------------------------------------------------

    def _container_from(self, ctr: Container, address: str, **_: Any) -> Container:
        return ctr.but(image=address)

    async def _container_imageRef(self, ctr: Container) -> str:
        await self._pull(ctr)
        digest = hashlib.sha256(str(ctr.image).encode()).hexdigest()
        return f"docker.io/library/{ctr.image}@sha256:{digest}"

    def _container_withWorkdir(self, ctr: Container, path: str, **_: Any) -> Container:
        return ctr.but(workdir=ctr.at(path))

    def _container_withEnvVariable(
        self, ctr: Container, name: str, value: str, **_: Any
    ) -> Container:
        return ctr.but(env={**ctr.env, name: value})

    def _container_withSecretVariable(self, ctr: Container, name: str, secret: str) -> Container:
        return ctr.but(secrets={**ctr.secrets, name: self._objects[secret]})

    def _container_withNewFile(
        self, ctr: Container, path: str, contents: str, **_: Any
    ) -> Container:
        return ctr.but(files={**ctr.files, ctr.at(path): contents})

    def _container_withMountedCache(
        self, ctr: Container, path: str, cache: str, **_: Any
    ) -> Container:
        return ctr.but(mounts={**ctr.mounts, ctr.at(path): self._objects[cache].key})

    def _container_withExec(
        self, ctr: Container, args: list[str], expect: str = "SUCCESS", **_: Any
    ) -> Container:
        return ctr.but(args=list(args), expect=expect)

    async def _container_sync(self, ctr: Container) -> str:
        if ctr.args is None:
            await self._pull(ctr)
        else:
            await self._ran(ctr)
        return self._remember("Container", ctr)

    async def _container_exitCode(self, ctr: Container) -> int:
        return (await self._ran(ctr)).exit_code

    async def _container_stdout(self, ctr: Container) -> str:
        return (await self._ran(ctr)).stdout

    async def _container_stderr(self, ctr: Container) -> str:
        return (await self._ran(ctr)).stderr

    # --- running a container -------------------------------------------------------------

    async def _pull(self, ctr: Container) -> None:
        """Take `pull_seconds` the first time an image is used (less if released)."""
        if ctr.image is None or ctr.image in self.pulled:
            return
        if self.pull_seconds > 0:
            with suppress(TimeoutError):
                async with asyncio.timeout(self.pull_seconds):
                    await self._released.wait()
        self.pulled.add(ctr.image)

    async def _ran(self, ctr: Container) -> ExecResult:
        """The result of the container's exec, run now if it has not run yet."""
        if ctr.args is None:
            raise graphql.GraphQLError("no command has been executed")
        if ctr.result is None:
            ctr.result = await self._execute(ctr)
        result = ctr.result
        if not _EXPECTED[ctr.expect](result.exit_code):
            raise graphql.GraphQLError(
                f"process {ctr.args!r} did not complete successfully: exit code: "
                f"{result.exit_code}",
                extensions={
                    "_type": "EXEC_ERROR",
                    "cmd": ctr.args,
                    "exitCode": result.exit_code,
                    "stdout": result.stdout,
                    "stderr": result.stderr,
                },
            )
        return result

    async def _execute(self, ctr: Container) -> ExecResult:
        assert ctr.args is not None
        await self._pull(ctr)
        secrets = {name: value.plaintext for name, value in ctr.secrets.items()}
        self.execs.append(
            ExecRecord(ctr.image, ctr.args, ctr.workdir, ctr.env, secrets, ctr.files, ctr.mounts)
        )
        self.exec_started.set()
        if self.stall_marker in ctr.args:
            await self._released.wait()
            raise graphql.GraphQLError("the stand-in was released while this exec stalled")
        layer = Path(tempfile.mkdtemp(prefix="layer-", dir=self.root))
        try:
            proc = await asyncio.create_subprocess_exec(
                *self._sandboxed(ctr, layer),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            out, err = await proc.communicate()
        finally:
            shutil.rmtree(layer, ignore_errors=True)
        code = proc.returncode if proc.returncode >= 0 else 128 - proc.returncode
        return ExecResult(code, out.decode(errors="replace"), err.decode(errors="replace"))

    def _sandboxed(self, ctr: Container, layer: Path) -> list[str]:
        """bwrap's arguments that show the command the container's view (module docstring)."""
        assert ctr.args is not None
        if ctr.workdir.startswith(_SYSTEM):
            raise graphql.GraphQLError(f"the stand-in cannot use {ctr.workdir} as workdir")
        (layer / ctr.workdir.lstrip("/")).mkdir(parents=True, exist_ok=True)
        for path, contents in ctr.files.items():
            if path.startswith(_SYSTEM):
                raise graphql.GraphQLError(f"the stand-in cannot write {path}")
            target = layer / path.lstrip("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(contents)
        argv = ["bwrap"]
        for system in _SYSTEM:
            argv += ["--ro-bind-try", system, system]
        argv += ["--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp"]
        for top in sorted(layer.iterdir()):
            argv += ["--bind", str(top), f"/{top.name}"]
        for path, key in ctr.mounts.items():
            argv += ["--bind", str(self.root / "volumes" / key), path]
        argv += ["--unshare-all", "--die-with-parent", "--new-session", "--clearenv"]
        variables = {"PATH": IMAGE_PATH, **ctr.env}
        variables.update({name: value.plaintext for name, value in ctr.secrets.items()})
        for name, value in variables.items():
            argv += ["--setenv", name, value]
        return [*argv, "--chdir", ctr.workdir, "--", *ctr.args]


def _type_name(value: Any, *_: Any) -> str:
    return {Container: "Container", SecretValue: "Secret", Volume: "CacheVolume"}[type(value)]


# --- a fake `dagger` CLI ----------------------------------------------------------------------

# `dagger session` as the fake CLI plays it: record the start, run `before` (Python), serve the
# stand-in on a port of its own, print that session, and end when stdin closes. Formatted with
# `before`, `starts`, `ended` (files), `port` (the stand-in's) and `token`.
_SESSION = """
import asyncio, os
with open({starts!r}, "a") as starts:
    starts.write(f"{{os.getpid()}}\\n")
{before}

async def pipe(reader, writer):
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except OSError:
        pass
    finally:
        writer.close()

async def forward(reader, writer):
    upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", {port})
    await asyncio.gather(pipe(reader, upstream_writer), pipe(upstream_reader, writer))

async def main():
    server = await asyncio.start_server(forward, "127.0.0.1", 0)
    own = server.sockets[0].getsockname()[1]
    print(json.dumps({{"port": own, "session_token": {token!r}}}), flush=True)
    await asyncio.to_thread(sys.stdin.read)

asyncio.run(main())
open({ended!r}, "w").close()
"""


def fake_cli(tmp_path: Path, script: str) -> Path:
    """A `dagger` on tmp_path/bin that runs `script` (Python) as `dagger session` would."""
    cli = tmp_path / "bin" / "dagger"
    cli.parent.mkdir(exist_ok=True)
    cli.write_text(f"#!{sys.executable}\nimport json, sys\n{script}\n")
    cli.chmod(0o755)
    return cli


def session_cli(tmp_path: Path, port: int, token: str, before: str = "") -> dict[str, str]:
    """A fake `dagger` (tmp_path/bin) whose `dagger session` runs `before` (Python), then
    serves the stand-in on `port` (see the module docstring) until its stdin closes, and
    writes tmp_path/ended; the variables that lead the executor to it."""
    files = {"starts": str(tmp_path / "starts"), "ended": str(tmp_path / "ended")}
    fake_cli(tmp_path, _SESSION.format(before=before, port=port, token=token, **files))
    return {"PATH": str(tmp_path / "bin"), "_EXPERIMENTAL_DAGGER_RUNNER_HOST": "tcp://x:1"}


def session_starts(tmp_path: Path) -> list[int]:
    """The process ids of the `dagger session`s the fake CLI in tmp_path started, in order."""
    starts = tmp_path / "starts"
    return [int(line) for line in starts.read_text().split()] if starts.exists() else []


def running(pid: int) -> bool:
    """Whether process `pid` still runs (a zombie has ended: its sockets are closed)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


async def killed(pid: int) -> None:
    """Kill process `pid` and return once it has ended (its sockets are closed by then)."""
    try:
        pidfd = os.pidfd_open(pid)  # readable once the process has exited
    except ProcessLookupError:
        return
    loop = asyncio.get_running_loop()
    exited = asyncio.Event()
    loop.add_reader(pidfd, exited.set)
    try:
        os.kill(pid, signal.SIGKILL)
        async with asyncio.timeout(10):
            await exited.wait()
    finally:
        loop.remove_reader(pidfd)
        os.close(pidfd)
