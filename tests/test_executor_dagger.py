"""The `dagger` executor, driven through the dagger-io SDK against an engine session.

The session is DaggerStandIn (a test double, see tests/dagger_standin.py) served over real
HTTP on 127.0.0.1; every query the SDK sends is checked against Dagger's schema. The cases
marked `dagger_engine` also run against a real engine where one is found, and skip saying
what is missing otherwise: `uv run pytest -m dagger_engine tests/test_executor_dagger.py`.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import aclosing, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from cryptography.fernet import Fernet
from dagger_standin import (
    SCHEMA,
    DaggerStandIn,
    fake_cli,
    killed,
    running,
    serving_standin,
    session_cli,
    session_starts,
)
from servers import serve_in_loop

from aop_mcp.config import dagger_environment, load_settings
from aop_mcp.engine import ManualClock
from aop_mcp.executors.dagger_engine import diagnose_engine
from aop_mcp.executors.dagger_executor import DaggerExecutor, Limits
from aop_mcp.models import FailureKind, TaskOutput
from aop_mcp.ports.executor import AttemptFailed, ExecutionRequest, SecretSource
from aop_mcp.security.secrets import SecretService
from aop_mcp.store import SqliteStore
from aop_mcp.workflow import DaggerRun

pytestmark = pytest.mark.anyio

IMAGE = "python:3.12-slim"
SECRET = "s3cr3t-value-9f2c"
WAIT = 20  # seconds any one attempt may take before the test fails
CAP = 65536


@dataclass
class Engine:
    """Where the executor finds an engine; `standin` is None for a real one."""

    env: dict[str, str]
    standin: DaggerStandIn | None
    made: list[DaggerExecutor] = field(default_factory=list)

    def executor(
        self,
        secrets: SecretSource | None = None,
        *,
        env: dict[str, str] | None = None,
        **options: Any,
    ) -> DaggerExecutor:
        """A DaggerExecutor on this engine (or on `env`), closed when the engine's block ends."""
        executor = DaggerExecutor(self.env if env is None else env, secrets, **options)
        self.made.append(executor)
        return executor

    async def close(self) -> None:
        for executor in self.made:
            await executor.aclose()

    def cli_env(self, tmp_path: Path, before: str = "") -> dict[str, str]:
        """A fake `dagger` CLI whose sessions serve this stand-in (`session_cli`)."""
        port, token = int(self.env["DAGGER_SESSION_PORT"]), self.env["DAGGER_SESSION_TOKEN"]
        return session_cli(tmp_path, port, token, before)


@asynccontextmanager
async def standin_engine(tmp_path: Path) -> AsyncIterator[Engine]:
    async with serving_standin(tmp_path / "standin") as (standin, port):
        engine = Engine(standin.session_env(port), standin)
        try:
            yield engine
        finally:
            await engine.close()


@pytest.fixture(params=["standin", pytest.param("real", marks=pytest.mark.dagger_engine)])
async def engine(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Engine]:
    """The stand-in, and a real engine where one is found (else that case skips)."""
    if request.param == "real":
        env = dagger_environment()
        diagnosis = diagnose_engine(env)
        if not diagnosis.found:
            pytest.skip(f"no Dagger engine: {diagnosis.detail}")
        engine = Engine(env, None)
        yield engine
        await engine.close()
        return
    async with standin_engine(tmp_path) as standin:
        yield standin


@pytest.fixture
async def secrets(tmp_path: Path) -> AsyncIterator[SecretService]:
    store = SqliteStore(tmp_path / "secrets.db")
    await store.open()
    yield SecretService(store, ManualClock(), Fernet.generate_key())
    await store.close()


def attempt(
    tmp_path: Path, command: list[str], *, timeout: float | None = None, **run: Any
) -> ExecutionRequest:
    spec = DaggerRun(executor="dagger", image=IMAGE, command=command, **run)
    return ExecutionRequest("run_1", "build", 1, spec, timeout, tmp_path, CAP)


async def run(executor: DaggerExecutor, request: ExecutionRequest) -> TaskOutput:
    with anyio.fail_after(WAIT):
        return await executor.execute(request)


async def failure(executor: DaggerExecutor, request: ExecutionRequest) -> AttemptFailed:
    with pytest.raises(AttemptFailed) as caught:
        await run(executor, request)
    return caught.value


def sh(script: str) -> list[str]:
    return ["sh", "-c", script]


def python(script: str) -> list[str]:
    return ["python3", "-c", script]


# --- a container task, end to end ------------------------------------------------------------


async def test_a_container_task_returns_stdout_json_and_the_image_digest(
    engine: Engine, tmp_path: Path
) -> None:
    output = await run(engine.executor(), attempt(tmp_path, sh("echo '{\"n\": 2}'")))
    assert (output.exit_code, output.stdout, output.stderr) == (0, '{"n": 2}\n', "")
    assert output.json == {"n": 2}
    assert output.image_digest is not None
    assert output.image_digest.startswith("sha256:")
    if engine.standin is not None:
        [received] = engine.standin.execs
        assert received.image == IMAGE
        assert received.args == sh("echo '{\"n\": 2}'")


async def test_a_failing_command_fails_with_its_exit_code_and_stderr(
    engine: Engine, tmp_path: Path
) -> None:
    failed = await failure(
        engine.executor(), attempt(tmp_path, sh("echo partial; echo oops >&2; exit 3"))
    )
    assert failed.error.kind is FailureKind.EXIT_CODE
    assert failed.error.exit_code == 3
    assert failed.error.message == "exited with code 3: oops"
    assert failed.output is not None
    assert (failed.output.stdout, failed.output.stderr) == ("partial\n", "oops\n")


async def test_env_workdir_and_files_reach_the_command(engine: Engine, tmp_path: Path) -> None:
    request = attempt(
        tmp_path,
        sh('echo "$GREETING|$(pwd)|$(cat data.txt)|$(cat /config/app.ini)|$AOP_TASK_ID"'),
        env={"GREETING": "hello"},
        workdir="/src",
        files={"data.txt": "from a file", "/config/app.ini": "x=1"},
    )
    output = await run(engine.executor(), request)
    assert output.stdout == "hello|/src|from a file|x=1|build\n"
    if engine.standin is not None:
        [received] = engine.standin.execs
        assert received.workdir == "/src"
        assert received.files == {"/src/data.txt": "from a file", "/config/app.ini": "x=1"}
        assert received.env["AOP_RUN_ID"] == "run_1"
        assert received.env["AOP_ATTEMPT"] == "1"


async def test_a_secret_reaches_the_command_but_never_its_output(
    engine: Engine, tmp_path: Path, secrets: SecretService
) -> None:
    await secrets.set("API_KEY", SECRET)
    script = 'echo "key=$API_KEY"; echo "$API_KEY" >&2; printf %s "$API_KEY" | sha256sum'
    request = attempt(tmp_path, sh(script), secrets=["API_KEY"])
    output = await run(engine.executor(secrets), request)
    digest = hashlib.sha256(SECRET.encode()).hexdigest()
    assert output.stdout == f"key=***\n{digest}  -\n"
    assert output.stderr == "***\n"
    if engine.standin is not None:
        [received] = engine.standin.execs
        assert received.secrets == {"API_KEY": SECRET}
        assert "API_KEY" not in received.env  # a secret variable, not a plain one


async def test_a_failure_message_never_shows_a_secret(
    engine: Engine, tmp_path: Path, secrets: SecretService
) -> None:
    await secrets.set("API_KEY", SECRET)
    request = attempt(tmp_path, sh('echo "bad key $API_KEY" >&2; exit 1'), secrets=["API_KEY"])
    failed = await failure(engine.executor(secrets), request)
    assert failed.error.message == "exited with code 1: bad key ***"
    assert failed.output is not None
    assert SECRET not in failed.output.stderr


PRINTS_THE_KEY_AS_JSON = """
import json, os, sys
key = os.environ["API_KEY"]
print(json.dumps({"key": key, "nested": [{"k" + key: "x" + key}]}))
upper_hex = json.dumps(key).replace("u00e4", "u00E4")
print(json.dumps(key, ensure_ascii=False), upper_hex, file=sys.stderr)
"""


async def test_a_secret_printed_as_json_is_masked_in_stdout_stderr_and_the_json(
    engine: Engine, tmp_path: Path, secrets: SecretService
) -> None:
    key = 'pä"ss\\x'  # JSON escapes three of its characters, one only with ensure_ascii
    await secrets.set("API_KEY", key)
    request = attempt(tmp_path, python(PRINTS_THE_KEY_AS_JSON), secrets=["API_KEY"])
    output = await run(engine.executor(secrets), request)
    assert output.stdout == '{"key": "***", "nested": [{"k***": "x***"}]}\n'
    assert output.json == {"key": "***", "nested": [{"k***": "x***"}]}
    assert output.stderr == '"***" "***"\n'


async def test_the_json_of_stdout_is_masked_even_where_its_text_spells_a_secret_unusually(
    engine: Engine, tmp_path: Path, secrets: SecretService
) -> None:
    # Over 1024 characters a value is matched only as Python and most JSON writers spell
    # it, not with upper-case hex escapes; parsing decodes them, and the JSON is masked.
    key = "ä" + "k" * 1500
    await secrets.set("API_KEY", key)
    script = (
        "import json, os; print(json.dumps({'key': os.environ['API_KEY']})"
        ".replace('u00e4', 'u00E4'))"
    )
    request = attempt(tmp_path, python(script), secrets=["API_KEY"])
    output = await run(engine.executor(secrets), request)
    assert output.json == {"key": "***"}


async def test_even_a_one_character_secret_is_masked_along_with_lookalikes(
    engine: Engine, tmp_path: Path, secrets: SecretService
) -> None:
    await secrets.set("PIN", "Q")
    request = attempt(tmp_path, sh('echo "$PIN-Quiet"'), secrets=["PIN"])
    output = await run(engine.executor(secrets), request)
    assert output.stdout == "***-***uiet\n"  # the price of never showing a short secret


async def test_a_secret_deleted_and_set_again_changes_the_cache_facts(
    secrets: SecretService,
) -> None:
    executor = DaggerExecutor({}, secrets)
    spec = DaggerRun(executor="dagger", image=IMAGE, command=["true"], secrets=["API_KEY"])
    await secrets.set("API_KEY", SECRET)
    first = await executor.cache_facts(spec)
    await secrets.delete("API_KEY")
    await secrets.set("API_KEY", SECRET)  # version 1 again, at the same clock reading
    second = await executor.cache_facts(spec)
    assert first != second
    assert SECRET not in repr([first, second])


async def test_a_cache_volume_keeps_files_between_runs(engine: Engine, tmp_path: Path) -> None:
    executor = engine.executor()
    volumes = {f"aop-test-{uuid.uuid4().hex[:12]}": "/cache"}  # fresh on a real engine too
    await run(executor, attempt(tmp_path, sh("echo first > /cache/mark"), cache_volumes=volumes))
    output = await run(executor, attempt(tmp_path, ["cat", "/cache/mark"], cache_volumes=volumes))
    assert output.stdout == "first\n"


async def test_a_command_over_its_timeout_is_stopped_inside_the_container(
    engine: Engine, tmp_path: Path
) -> None:
    started = time.monotonic()
    failed = await failure(
        engine.executor(), attempt(tmp_path, sh("echo started; sleep 30"), timeout=1)
    )
    assert failed.error.kind is FailureKind.TIMEOUT
    assert failed.error.message == "timed out after 1s"
    assert failed.output is not None
    assert failed.output.stdout == "started\n"
    assert time.monotonic() - started < 10
    if engine.standin is not None:
        [received] = engine.standin.execs
        assert received.args == ["timeout", "-k", "1", "1", *sh("echo started; sleep 30")]


# --- the stand-in only: a stuck engine, cancellation, the CLI route -----------------------------


async def test_an_engine_that_stops_answering_is_abandoned_after_the_grace(tmp_path: Path) -> None:
    async with standin_engine(tmp_path) as engine:
        assert engine.standin is not None
        executor = engine.executor(grace=0.2)
        started = time.monotonic()
        request = attempt(tmp_path, ["sleep", engine.standin.stall_marker], timeout=0.3)
        failed = await failure(executor, request)
    assert failed.error.kind is FailureKind.TIMEOUT
    assert "the engine had not answered 0.2s later" in failed.error.message
    assert time.monotonic() - started < 5


async def test_a_slow_image_pull_does_not_count_against_the_timeout(tmp_path: Path) -> None:
    async with standin_engine(tmp_path) as engine:
        assert engine.standin is not None
        engine.standin.pull_seconds = 3  # a cold pull, longer than timeout + grace
        executor = engine.executor(grace=0.5)
        output = await run(executor, attempt(tmp_path, ["echo", "quick"], timeout=1))
        assert engine.standin.pulled == {IMAGE}
    assert output.stdout == "quick\n"
    assert output.duration < 1  # the command's time, not the pull's


async def test_an_image_pull_over_its_limit_fails_as_an_error_naming_the_pull(
    tmp_path: Path,
) -> None:
    async with standin_engine(tmp_path) as engine:
        assert engine.standin is not None
        engine.standin.pull_seconds = 60
        executor = engine.executor(limits=Limits(pull=0.5))
        started = time.monotonic()
        failed = await failure(executor, attempt(tmp_path, ["true"], timeout=30))
        assert engine.standin.execs == []
    assert time.monotonic() - started < 5
    assert failed.error.kind is FailureKind.ERROR
    assert failed.error.message == (
        f"pulling the image {IMAGE} took over 0.5s (the task's timeout counts only from when "
        "its command starts)"
    )


async def test_a_cancelled_attempt_stops_and_reraises(tmp_path: Path) -> None:
    async with standin_engine(tmp_path) as engine:
        assert engine.standin is not None
        executor = engine.executor()
        request = attempt(tmp_path, ["sleep", engine.standin.stall_marker])
        task = asyncio.create_task(executor.execute(request))
        with anyio.fail_after(WAIT):
            await engine.standin.exec_started.wait()
        task.cancel()
        with anyio.fail_after(2), pytest.raises(asyncio.CancelledError):
            await task


async def test_the_cli_route_starts_a_session_and_closing_the_executor_ends_it(
    tmp_path: Path,
) -> None:
    async with standin_engine(tmp_path) as engine:
        arguments = f"open({str(tmp_path / 'args')!r}, 'w').write(' '.join(sys.argv[1:]))"
        executor = engine.executor(env=engine.cli_env(tmp_path, arguments))
        output = await run(executor, attempt(tmp_path, ["echo", "via the CLI"]))
        [pid] = session_starts(tmp_path)
        assert running(pid)  # kept for the next attempt
        with anyio.fail_after(WAIT):
            await executor.aclose()
        assert not running(pid)
    assert output.stdout == "via the CLI\n"
    assert (tmp_path / "args").read_text().startswith("session --label dagger.io/sdk.name:python")
    assert (tmp_path / "ended").exists()  # stdin was closed: the CLI ended its session


async def test_attempts_one_after_another_start_dagger_session_once(tmp_path: Path) -> None:
    async with standin_engine(tmp_path) as engine:
        assert engine.standin is not None
        executor = engine.executor(env=engine.cli_env(tmp_path))
        outputs = [await run(executor, attempt(tmp_path, ["echo", str(n)])) for n in range(3)]
        assert [output.stdout for output in outputs] == ["0\n", "1\n", "2\n"]
        assert len(session_starts(tmp_path)) == 1
        assert engine.standin.introspections == 1  # one connection, its API loaded once


async def test_concurrent_first_attempts_share_one_dagger_session(tmp_path: Path) -> None:
    async with standin_engine(tmp_path) as engine:
        assert engine.standin is not None
        # The start takes a while, so every attempt arrives while it is under way.
        executor = engine.executor(env=engine.cli_env(tmp_path, "import time; time.sleep(0.5)"))
        requests = [attempt(tmp_path, ["echo", str(n)]) for n in range(4)]
        outputs = await asyncio.gather(*(run(executor, request) for request in requests))
        assert sorted(output.stdout for output in outputs) == ["0\n", "1\n", "2\n", "3\n"]
        assert len(session_starts(tmp_path)) == 1
        assert engine.standin.introspections == 1


async def test_a_dagger_session_that_died_is_started_again_for_the_next_attempt(
    tmp_path: Path,
) -> None:
    async with standin_engine(tmp_path) as engine:
        executor = engine.executor(env=engine.cli_env(tmp_path))
        await run(executor, attempt(tmp_path, ["true"]))
        [first] = session_starts(tmp_path)
        await killed(first)
        output = await run(executor, attempt(tmp_path, ["echo", "on a new session"]))
        assert output.stdout == "on a new session\n"
        [_, second] = session_starts(tmp_path)
        assert running(second)


async def test_an_attempt_whose_dagger_session_dies_fails_as_an_error_and_the_next_starts_anew(
    tmp_path: Path,
) -> None:
    async with standin_engine(tmp_path) as engine:
        assert engine.standin is not None
        executor = engine.executor(env=engine.cli_env(tmp_path))
        stuck = asyncio.create_task(
            failure(executor, attempt(tmp_path, ["sleep", engine.standin.stall_marker]))
        )
        with anyio.fail_after(WAIT):
            await engine.standin.exec_started.wait()
        [first] = session_starts(tmp_path)
        await killed(first)  # its port closes, and the connection through it is cut
        failed = await stuck
        assert failed.error.kind is FailureKind.ERROR  # retried, as any engine failure
        assert failed.error.message.startswith("the Dagger engine failed: ")
        output = await run(executor, attempt(tmp_path, ["echo", "again"]))
        assert output.stdout == "again\n"
        assert len(session_starts(tmp_path)) == 2


async def test_a_timed_out_or_cancelled_attempt_leaves_the_shared_session_to_the_others(
    tmp_path: Path,
) -> None:
    async with standin_engine(tmp_path) as engine:
        standin = engine.standin
        assert standin is not None
        executor = engine.executor(env=engine.cli_env(tmp_path), grace=0.2)
        stuck = attempt(tmp_path, ["sleep", standin.stall_marker], timeout=0.3)
        timed_out, quick = await asyncio.gather(
            failure(executor, stuck), run(executor, attempt(tmp_path, ["echo", "quick"]))
        )
        assert timed_out.error.kind is FailureKind.TIMEOUT
        assert quick.stdout == "quick\n"

        standin.exec_started.clear()
        cancelled = asyncio.create_task(
            executor.execute(attempt(tmp_path, ["sleep", standin.stall_marker]))
        )
        with anyio.fail_after(WAIT):
            await standin.exec_started.wait()
        cancelled.cancel()
        with anyio.fail_after(2), pytest.raises(asyncio.CancelledError):
            await cancelled

        after = await run(executor, attempt(tmp_path, ["echo", "after"]))
        assert after.stdout == "after\n"
        assert len(session_starts(tmp_path)) == 1
        assert standin.introspections == 1


async def test_attempts_on_a_running_session_share_one_connection(tmp_path: Path) -> None:
    async with standin_engine(tmp_path) as engine:
        assert engine.standin is not None
        executor = engine.executor()
        await run(executor, attempt(tmp_path, ["true"]))
        requests = [attempt(tmp_path, ["echo", str(n)]) for n in range(3)]
        await asyncio.gather(*(run(executor, request) for request in requests))
        await run(executor, attempt(tmp_path, ["true"]))
        assert len(engine.standin.execs) == 5
        assert engine.standin.introspections == 1


async def test_a_slow_engine_start_does_not_count_against_the_timeout(tmp_path: Path) -> None:
    async with standin_engine(tmp_path) as engine:
        env = engine.cli_env(tmp_path, "import time; time.sleep(3)")
        executor = engine.executor(env=env, grace=0.5)
        output = await run(executor, attempt(tmp_path, ["echo", "quick"], timeout=1))
    assert output.stdout == "quick\n"
    assert output.duration < 1


async def test_an_engine_start_over_its_limit_fails_as_an_error_naming_it(
    tmp_path: Path,
) -> None:
    fake_cli(tmp_path, "sys.stdin.read()")  # never gives a session
    env = {"PATH": str(tmp_path / "bin"), "_EXPERIMENTAL_DAGGER_RUNNER_HOST": "tcp://x:1"}
    async with aclosing(DaggerExecutor(env, limits=Limits(start=0.5))) as executor:
        failed = await failure(executor, attempt(tmp_path, ["true"], timeout=30))
    assert failed.error.kind is FailureKind.ERROR
    assert failed.error.message == (
        "the Dagger engine did not start: `dagger session` gave no session within 0.5s "
        "(it may still be pulling the engine's image)"
    )


async def test_the_dagger_cli_gets_only_its_own_variables_never_the_hubs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hub_env = {
        "AOP_DATA_DIR": str(tmp_path / "data"),
        "AOP_TOKEN": "an-admin-token-of-the-hub-0123",
        "AOP_SECRET_KEY": Fernet.generate_key().decode(),
        "HOME": str(tmp_path / "home"),
        "HTTPS_PROXY": "http://proxy.example:3128",
        "EDITOR": "vi",
    }
    for name, value in hub_env.items():  # an inherited environment would hold them too
        monkeypatch.setenv(name, value)
    recorded = tmp_path / "environment.json"
    async with standin_engine(tmp_path) as engine:
        record = f"import os; open({str(recorded)!r}, 'w').write(json.dumps(dict(os.environ)))"
        cli_env = engine.cli_env(tmp_path, record)
        settings = load_settings({**hub_env, **cli_env})
        await run(engine.executor(env=settings.dagger_env), attempt(tmp_path, ["true"]))
    seen = json.loads(recorded.read_text())
    seen.pop("LC_CTYPE", None)  # Python's own locale coercion, in the fake CLI
    assert seen == {**cli_env, "HOME": hub_env["HOME"], "HTTPS_PROXY": hub_env["HTTPS_PROXY"]}


async def test_a_cli_that_cannot_start_a_session_fails_the_attempt(tmp_path: Path) -> None:
    fake_cli(tmp_path, "print('cannot reach the runner', file=sys.stderr)\nsys.exit(1)")
    env = {"PATH": str(tmp_path / "bin"), "_EXPERIMENTAL_DAGGER_RUNNER_HOST": "tcp://x:1"}
    async with aclosing(DaggerExecutor(env)) as executor:
        failed = await failure(executor, attempt(tmp_path, ["true"]))
    assert failed.error.kind is FailureKind.ERROR
    assert failed.error.message == ("`dagger session` exited with code 1: cannot reach the runner")


async def test_after_a_failed_engine_start_the_next_attempt_starts_it_again(
    tmp_path: Path,
) -> None:
    once = tmp_path / "failed-once"
    fails_first = (
        f"import pathlib; mark = pathlib.Path({str(once)!r})\n"
        "if not mark.exists():\n"
        "    mark.touch(); print('runner not ready', file=sys.stderr); sys.exit(1)"
    )
    async with standin_engine(tmp_path) as engine:
        executor = engine.executor(env=engine.cli_env(tmp_path, fails_first))
        failed = await failure(executor, attempt(tmp_path, ["true"]))
        output = await run(executor, attempt(tmp_path, ["echo", "started"]))
    assert failed.error.message == "`dagger session` exited with code 1: runner not ready"
    assert output.stdout == "started\n"
    assert len(session_starts(tmp_path)) == 2


# --- no engine, missing secrets, imports -------------------------------------------------------


async def test_without_an_engine_a_task_fails_at_once_saying_what_to_do(tmp_path: Path) -> None:
    started = time.monotonic()
    failed = await failure(DaggerExecutor({"PATH": str(tmp_path)}), attempt(tmp_path, ["true"]))
    assert time.monotonic() - started < 1
    assert failed.error.kind is FailureKind.MISCONFIGURED
    message = failed.error.message
    assert message.startswith("no Dagger engine for this task: no DAGGER_SESSION_PORT")
    assert "`dagger run`" in message
    assert "_EXPERIMENTAL_DAGGER_RUNNER_HOST" in message


async def test_a_missing_secret_fails_at_once_naming_it(
    tmp_path: Path, secrets: SecretService
) -> None:
    async with standin_engine(tmp_path) as engine:
        executor = engine.executor(secrets)
        failed = await failure(executor, attempt(tmp_path, ["true"], secrets=["NOPE"]))
        assert engine.standin is not None
        assert engine.standin.execs == []
    assert failed.error.kind is FailureKind.MISCONFIGURED
    assert "secret 'NOPE', which is not set" in failed.error.message
    assert "aop secret set NOPE" in failed.error.message


async def test_the_standin_refuses_queries_outside_daggers_schema_and_wrong_tokens(
    tmp_path: Path,
) -> None:
    if SCHEMA is None:
        pytest.skip("Dagger's schema (../shared/dagger/schema.graphqls) is not here")
    standin = DaggerStandIn(SCHEMA, tmp_path)
    async with (
        serve_in_loop(standin.app) as server,
        httpx.AsyncClient(base_url=server.url, timeout=WAIT) as client,
    ):
        wrong = await client.post("/query", json={"query": "{ version }"}, auth=("nope", ""))
        bad = '{ container { fromm(address: "x") { id } } }'
        refused = await client.post("/query", json={"query": bad}, auth=(standin.token, ""))
        good = await client.post("/query", json={"query": "{ version }"}, auth=(standin.token, ""))
    assert (wrong.status_code, standin.refused) == (401, 1)
    assert "fromm" in refused.json()["errors"][0]["message"]
    assert len(standin.invalid) == 1
    assert good.json() == {"data": {"version": "v0.21.8-standin"}}


def test_importing_the_hub_and_executors_does_not_import_dagger() -> None:
    code = (
        "import sys, aop_mcp.hub, aop_mcp.executors, aop_mcp.cli.doctor; "
        "assert 'dagger' not in sys.modules, 'dagger was imported'"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
