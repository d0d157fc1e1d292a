"""`aop stdio` as an MCP client starts it: a real subprocess, the SDK's stdio client."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp_support import HELLO, INITIALIZE, WAIT, call, data
from servers import clean_env

pytestmark = pytest.mark.anyio


def command(tmp_path: Path) -> list[str]:
    return [sys.executable, "-m", "aop_mcp", "stdio", "--db", str(tmp_path / "aop.db")]


@asynccontextmanager
async def stdio_session(tmp_path: Path, mode: str) -> AsyncIterator[Client]:
    argv = command(tmp_path)
    params = StdioServerParameters(command=argv[0], args=argv[1:], env=clean_env(tmp_path))
    # The server's stderr goes to a file: pytest's captured stderr has no descriptor.
    with (tmp_path / "stderr.log").open("w") as errlog:
        async with Client(stdio_client(params, errlog=errlog), mode=mode) as client:
            yield client


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_a_client_defines_starts_and_waits_for_a_run_over_stdio(
    tmp_path: Path, mode: str
) -> None:
    with anyio.fail_after(WAIT):
        async with stdio_session(tmp_path, mode) as client:
            tools = {tool.name for tool in (await client.list_tools()).tools}
            assert {"workflow_define", "run_start", "run_wait"} <= tools
            await call(client, "workflow_define", document=HELLO)
            started = await call(client, "run_start", workflow="hello")
            progress: list[float] = []

            async def on_progress(done: float, total: float | None, message: str | None) -> None:
                progress.append(done)

            result = await client.call_tool(
                "run_wait",
                {"run_id": started["id"], "timeout_seconds": WAIT},
                progress_callback=on_progress,
            )
            ended = data(result)
    assert ended["status"] == "succeeded"
    assert progress[-1] == 3
    assert "Traceback" not in (tmp_path / "stderr.log").read_text()


@pytest.mark.slow
def test_stdout_carries_only_the_protocol_and_eof_ends_the_server_with_0(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        command(tmp_path),
        env=clean_env(tmp_path),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        out, err = proc.communicate(json.dumps(INITIALIZE) + "\n", timeout=WAIT)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    lines = out.splitlines()
    assert len(lines) == 1
    response = json.loads(lines[0])
    assert response["id"] == 1
    assert response["result"]["serverInfo"]["name"] == "aop-mcp"
    assert response["result"]["capabilities"]["resources"]["subscribe"] is True


@pytest.mark.slow
def test_an_unusable_database_is_one_error_line_and_exit_1(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    argv = [sys.executable, "-m", "aop_mcp", "stdio", "--db", str(blocker / "aop.db")]
    proc = subprocess.run(
        argv, env=clean_env(tmp_path), input="", capture_output=True, text=True, timeout=WAIT
    )
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert "Traceback" not in proc.stderr
    assert "cannot open the SQLite store" in proc.stderr
