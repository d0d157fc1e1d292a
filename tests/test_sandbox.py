"""The sandbox by default, network and resource limits of local tasks, and the policy for
unsandboxed local tasks defined over MCP and HTTP."""

from __future__ import annotations

import shutil
import signal
import socket
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from api_support import serving
from engine_support import hub_on
from mcp import Client
from mcp_support import call, failing

from aop_mcp.config import load_settings
from aop_mcp.errors import ConfigError
from aop_mcp.executors import LocalExecutor
from aop_mcp.mcp.server import create_mcp
from aop_mcp.models import TaskOutput
from aop_mcp.ports.executor import AttemptFailed, ExecutionRequest
from aop_mcp.security.sandbox import decide_sandbox
from aop_mcp.workflow.document import LocalRun

pytestmark = pytest.mark.anyio

# The sandbox's fresh /tmp may hide a virtualenv there: use the interpreter it links to.
REAL_PYTHON = str(Path(sys.executable).resolve())
needs_bwrap = pytest.mark.skipif(
    shutil.which("bwrap") is None,
    reason="bubblewrap (bwrap) is not installed: `apt-get install bubblewrap` to run this",
)
needs_prlimit = pytest.mark.skipif(
    shutil.which("prlimit") is None, reason="prlimit (util-linux) is not installed"
)


# --- AOP_SANDBOX ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "mode"), [("auto", "auto"), ("AUTO", "auto"), ("1", "true"), ("off", "false")]
)
def test_aop_sandbox_is_auto_true_or_false(tmp_path: Path, raw: str, mode: str) -> None:
    settings = load_settings({"AOP_DATA_DIR": str(tmp_path), "AOP_SANDBOX": raw})
    assert settings.sandbox == mode


def test_aop_sandbox_defaults_to_auto_and_rejects_other_words(tmp_path: Path) -> None:
    assert load_settings({"AOP_DATA_DIR": str(tmp_path)}).sandbox == "auto"
    with pytest.raises(ConfigError, match=r"AOP_SANDBOX=.maybe.*auto, true or false"):
        load_settings({"AOP_DATA_DIR": str(tmp_path), "AOP_SANDBOX": "maybe"})


def test_auto_sandboxes_only_where_bwrap_is_on_path(tmp_path: Path) -> None:
    missing = decide_sandbox("auto", str(tmp_path))
    assert not missing.sandboxed
    assert "apt-get install bubblewrap" in missing.describe()
    required = decide_sandbox("true", str(tmp_path))
    assert required.sandboxed
    assert not required.usable
    assert not decide_sandbox("false", "/usr/bin:/bin").sandboxed


@needs_bwrap
def test_auto_sandboxes_where_bwrap_is_installed() -> None:
    found = decide_sandbox("auto", "/usr/local/bin:/usr/bin:/bin")
    assert found.sandboxed
    assert found.usable
    assert "sandboxed with bubblewrap" in found.describe()


async def test_hub_decides_once_at_start(tmp_path: Path) -> None:
    async with hub_on(tmp_path, sandbox="auto", path=str(tmp_path)) as hub:
        assert not hub.sandbox.sandboxed


# --- network and limits ---------------------------------------------------------------------


def request(tmp_path: Path, spec: LocalRun, timeout: float = 10) -> ExecutionRequest:
    return ExecutionRequest(
        run_id="run_1",
        task_id="probe",
        attempt=1,
        spec=spec,
        timeout=timeout,
        work_root=tmp_path / "work",
        output_cap=65536,
    )


async def execute(tmp_path: Path, spec: LocalRun, *, sandbox: bool) -> TaskOutput:
    with anyio.fail_after(15):
        return await LocalExecutor(sandbox=sandbox).execute(request(tmp_path, spec))


async def refused(tmp_path: Path, spec: LocalRun, *, sandbox: bool) -> AttemptFailed:
    with pytest.raises(AttemptFailed) as caught:
        await execute(tmp_path, spec, sandbox=sandbox)
    return caught.value


def python(code: str, **fields: Any) -> LocalRun:
    return LocalRun(executor="local", command=[REAL_PYTHON, "-c", code], **fields)


@pytest.fixture
def listener() -> Iterator[int]:
    """A TCP listener on 127.0.0.1 of the host; yields its port."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(4)
        yield server.getsockname()[1]


def connect(port: int) -> str:
    return f"import socket; socket.create_connection(('127.0.0.1', {port}), timeout=3); print('in')"


@needs_bwrap
async def test_sandboxed_task_cannot_reach_the_hosts_loopback(
    tmp_path: Path, listener: int
) -> None:
    failure = await refused(tmp_path, python(connect(listener)), sandbox=True)
    assert failure.output is not None
    assert "ConnectionRefusedError" in failure.output.stderr or "unreachable" in (
        failure.output.stderr
    )


@needs_bwrap
async def test_sandboxed_task_with_network_true_reaches_it(tmp_path: Path, listener: int) -> None:
    output = await execute(tmp_path, python(connect(listener), network=True), sandbox=True)
    assert output.stdout == "in\n"


ALLOCATE_200MB = "b = bytearray(200 * 1024 * 1024); print('allocated')"
SPIN = "while True: pass"


@needs_prlimit
@pytest.mark.parametrize("sandbox", [False, pytest.param(True, marks=needs_bwrap)])
async def test_task_over_its_memory_limit_fails(tmp_path: Path, sandbox: bool) -> None:
    spec = python(ALLOCATE_200MB, limits={"memory": "64M"})
    failure = await refused(tmp_path, spec, sandbox=sandbox)
    assert failure.output is not None
    assert "MemoryError" in failure.output.stderr
    assert "allocated" not in failure.output.stdout
    within = await execute(tmp_path, python(ALLOCATE_200MB, limits={"memory": "1G"}), sandbox=False)
    assert within.stdout == "allocated\n"


@needs_prlimit
@pytest.mark.parametrize("sandbox", [False, pytest.param(True, marks=needs_bwrap)])
async def test_cpu_bound_task_is_killed_after_its_cpu_seconds(
    tmp_path: Path, sandbox: bool
) -> None:
    failure = await refused(tmp_path, python(SPIN, limits={"cpu_seconds": 1}), sandbox=sandbox)
    assert failure.output is not None
    killers = (signal.SIGXCPU, signal.SIGKILL)
    # Unsandboxed, the signal shows as is; bubblewrap reports it as a shell does (128 + n).
    expected = {128 + sig for sig in killers} if sandbox else {-sig for sig in killers}
    assert failure.output.exit_code in expected


# --- policy: unsandboxed local tasks over MCP and HTTP --------------------------------------

LOCAL = {
    "name": "shell-out",
    "tasks": [{"id": "build", "run": {"executor": "local", "command": ["true"]}}],
}
PYTHON_ONLY = {
    "name": "pure",
    "tasks": [{"id": "dump", "run": {"executor": "python", "function": "json:dumps"}}],
}
UNSANDBOXED_REFUSED = {"sandbox": "false", "allow_unsandboxed": False}


async def test_mcp_refuses_a_local_task_when_local_tasks_are_not_sandboxed(
    tmp_path: Path,
) -> None:
    async with hub_on(tmp_path, **UNSANDBOXED_REFUSED) as hub:
        door = create_mcp()
        async with door.attached(hub), Client(door.server) as client:
            message = await failing(client, "workflow_define", document=LOCAL)
            assert "'build'" in message
            assert "AOP_ALLOW_UNSANDBOXED" in message
            checked = await failing(client, "workflow_validate", document=LOCAL)
            assert "'build'" in checked
            assert await hub.workflows.list() == []
            defined = await call(client, "workflow_define", document=PYTHON_ONLY)
            assert defined["created"] is True


async def test_mcp_defines_a_local_task_when_the_operator_allows_it(tmp_path: Path) -> None:
    async with hub_on(tmp_path, sandbox="false", allow_unsandboxed=True) as hub:
        door = create_mcp()
        async with door.attached(hub), Client(door.server) as client:
            defined = await call(client, "workflow_define", document=LOCAL)
            assert defined["name"] == "shell-out"


async def test_rest_refuses_a_local_task_with_403_when_not_sandboxed(tmp_path: Path) -> None:
    async with serving(tmp_path, **UNSANDBOXED_REFUSED) as api, api.client() as client:
        for path in ("/workflows", "/workflows/validate"):
            response = await client.post(path, json=LOCAL)
            assert response.status_code == 403, response.text
            assert response.headers["content-type"] == "application/problem+json"
            assert "'build'" in response.json()["detail"]
        assert (await client.post("/workflows", json=PYTHON_ONLY)).status_code == 201


@needs_bwrap
async def test_rest_accepts_a_local_task_when_sandboxed(tmp_path: Path) -> None:
    async with (
        serving(tmp_path, sandbox="auto", allow_unsandboxed=False) as api,
        api.client() as client,
    ):
        assert (await client.post("/workflows", json=LOCAL)).status_code == 201


async def test_server_logs_one_line_saying_why_local_tasks_are_not_sandboxed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from aop_mcp.server import _log_sandbox

    async with hub_on(tmp_path, sandbox="auto", path=str(tmp_path)) as hub:
        with caplog.at_level("INFO", logger="uvicorn.error"):
            _log_sandbox(hub)
    [record] = caplog.records
    assert record.levelname == "WARNING"
    assert "NOT sandboxed" in record.getMessage()
    assert "apt-get install bubblewrap" in record.getMessage()
