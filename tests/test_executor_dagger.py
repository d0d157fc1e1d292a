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
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from cryptography.fernet import Fernet
from dagger_standin import SCHEMA, DaggerStandIn, serving_standin
from servers import serve_in_loop

from aop_mcp.config import dagger_environment, load_settings
from aop_mcp.engine import ManualClock
from aop_mcp.executors.dagger_engine import diagnose_engine
from aop_mcp.executors.dagger_executor import DaggerExecutor, Limits
from aop_mcp.models import FailureKind, TaskOutput
from aop_mcp.ports.executor import AttemptFailed, ExecutionRequest
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


@asynccontextmanager
async def standin_engine(tmp_path: Path) -> AsyncIterator[Engine]:
    async with serving_standin(tmp_path / "standin") as (standin, port):
        yield Engine(standin.session_env(port), standin)


@pytest.fixture(params=["standin", pytest.param("real", marks=pytest.mark.dagger_engine)])
async def engine(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Engine]:
    """The stand-in, and a real engine where one is found (else that case skips)."""
    if request.param == "real":
        env = dagger_environment()
        diagnosis = diagnose_engine(env)
        if not diagnosis.found:
            pytest.skip(f"no Dagger engine: {diagnosis.detail}")
        yield Engine(env, None)
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
    output = await run(DaggerExecutor(engine.env), attempt(tmp_path, sh("echo '{\"n\": 2}'")))
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
        DaggerExecutor(engine.env), attempt(tmp_path, sh("echo partial; echo oops >&2; exit 3"))
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
    output = await run(DaggerExecutor(engine.env), request)
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
    output = await run(DaggerExecutor(engine.env, secrets), request)
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
    failed = await failure(DaggerExecutor(engine.env, secrets), request)
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
    output = await run(DaggerExecutor(engine.env, secrets), request)
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
    output = await run(DaggerExecutor(engine.env, secrets), request)
    assert output.json == {"key": "***"}


async def test_even_a_one_character_secret_is_masked_along_with_lookalikes(
    engine: Engine, tmp_path: Path, secrets: SecretService
) -> None:
    await secrets.set("PIN", "Q")
    request = attempt(tmp_path, sh('echo "$PIN-Quiet"'), secrets=["PIN"])
    output = await run(DaggerExecutor(engine.env, secrets), request)
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
    executor = DaggerExecutor(engine.env)
    volumes = {f"aop-test-{uuid.uuid4().hex[:12]}": "/cache"}  # fresh on a real engine too
    await run(executor, attempt(tmp_path, sh("echo first > /cache/mark"), cache_volumes=volumes))
    output = await run(executor, attempt(tmp_path, ["cat", "/cache/mark"], cache_volumes=volumes))
    assert output.stdout == "first\n"


async def test_a_command_over_its_timeout_is_stopped_inside_the_container(
    engine: Engine, tmp_path: Path
) -> None:
    started = time.monotonic()
    failed = await failure(
        DaggerExecutor(engine.env), attempt(tmp_path, sh("echo started; sleep 30"), timeout=1)
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
        executor = DaggerExecutor(engine.env, grace=0.2)
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
        executor = DaggerExecutor(engine.env, grace=0.5)
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
        executor = DaggerExecutor(engine.env, limits=Limits(pull=0.5))
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
        executor = DaggerExecutor(engine.env)
        request = attempt(tmp_path, ["sleep", engine.standin.stall_marker])
        task = asyncio.create_task(executor.execute(request))
        with anyio.fail_after(WAIT):
            await engine.standin.exec_started.wait()
        task.cancel()
        with anyio.fail_after(2), pytest.raises(asyncio.CancelledError):
            await task


def fake_cli(tmp_path: Path, script: str) -> Path:
    """A `dagger` on tmp_path/bin that runs `script` (Python) as `dagger session` would."""
    cli = tmp_path / "bin" / "dagger"
    cli.parent.mkdir(exist_ok=True)
    cli.write_text(f"#!{sys.executable}\nimport json, sys\n{script}\n")
    cli.chmod(0o755)
    return cli


def session_cli(tmp_path: Path, engine: Engine, before: str = "") -> dict[str, str]:
    """A fake `dagger` that runs `before` (Python), then gives the stand-in's session and
    waits for its stdin to close; the variables that lead the executor to it."""
    port, token = engine.env["DAGGER_SESSION_PORT"], engine.env["DAGGER_SESSION_TOKEN"]
    fake_cli(
        tmp_path,
        f"{before}\n"
        f"print(json.dumps({{'port': {port}, 'session_token': {token!r}}}), flush=True)\n"
        f"sys.stdin.read()\nopen({str(tmp_path / 'ended')!r}, 'w').close()",
    )
    return {"PATH": str(tmp_path / "bin"), "_EXPERIMENTAL_DAGGER_RUNNER_HOST": "tcp://x:1"}


async def test_the_cli_route_starts_a_session_and_ends_it(tmp_path: Path) -> None:
    async with standin_engine(tmp_path) as engine:
        arguments = f"open({str(tmp_path / 'args')!r}, 'w').write(' '.join(sys.argv[1:]))"
        env = session_cli(tmp_path, engine, arguments)
        output = await run(DaggerExecutor(env), attempt(tmp_path, ["echo", "via the CLI"]))
    assert output.stdout == "via the CLI\n"
    assert (tmp_path / "args").read_text().startswith("session --label dagger.io/sdk.name:python")
    assert (tmp_path / "ended").exists()  # stdin was closed: the CLI ended its session


async def test_a_slow_engine_start_does_not_count_against_the_timeout(tmp_path: Path) -> None:
    async with standin_engine(tmp_path) as engine:
        env = session_cli(tmp_path, engine, "import time; time.sleep(3)")
        executor = DaggerExecutor(env, grace=0.5)
        output = await run(executor, attempt(tmp_path, ["echo", "quick"], timeout=1))
    assert output.stdout == "quick\n"
    assert output.duration < 1


async def test_an_engine_start_over_its_limit_fails_as_an_error_naming_it(
    tmp_path: Path,
) -> None:
    fake_cli(tmp_path, "sys.stdin.read()")  # never gives a session
    env = {"PATH": str(tmp_path / "bin"), "_EXPERIMENTAL_DAGGER_RUNNER_HOST": "tcp://x:1"}
    executor = DaggerExecutor(env, limits=Limits(start=0.5))
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
        cli_env = session_cli(tmp_path, engine, record)
        settings = load_settings({**hub_env, **cli_env})
        await run(DaggerExecutor(settings.dagger_env), attempt(tmp_path, ["true"]))
    seen = json.loads(recorded.read_text())
    seen.pop("LC_CTYPE", None)  # Python's own locale coercion, in the fake CLI
    assert seen == {**cli_env, "HOME": hub_env["HOME"], "HTTPS_PROXY": hub_env["HTTPS_PROXY"]}


async def test_a_cli_that_cannot_start_a_session_fails_the_attempt(tmp_path: Path) -> None:
    fake_cli(tmp_path, "print('cannot reach the runner', file=sys.stderr)\nsys.exit(1)")
    env = {"PATH": str(tmp_path / "bin"), "_EXPERIMENTAL_DAGGER_RUNNER_HOST": "tcp://x:1"}
    failed = await failure(DaggerExecutor(env), attempt(tmp_path, ["true"]))
    assert failed.error.kind is FailureKind.ERROR
    assert failed.error.message == ("`dagger session` exited with code 1: cannot reach the runner")


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
        executor = DaggerExecutor(engine.env, secrets)
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
