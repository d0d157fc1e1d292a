"""MCP over streamable HTTP as `aop serve` serves it: a real uvicorn on 127.0.0.1, bearer tokens."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import anyio
import httpx2
import pytest
from engine_support import settings_for
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp_support import HELLO, INITIALIZE, WAIT, call, data, text
from servers import free_port, read_until, serve_in_loop, spawned, stop

from aop_mcp.hub import Hub
from aop_mcp.security.principal import Role
from aop_mcp.server import create_app

pytestmark = pytest.mark.anyio

PRESET = "preset-admin-token-0123456789"  # AOP_TOKEN, as an operator would choose it
MCP_HEADERS = {"Accept": "application/json, text/event-stream"}


@dataclass
class Served:
    hub: Hub
    url: str  # of the MCP endpoint

    def http(self, token: str | None) -> httpx2.AsyncClient:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx2.AsyncClient(headers=headers, timeout=WAIT, trust_env=False)


@contextlib.asynccontextmanager
async def serving(tmp_path: Path) -> AsyncIterator[Served]:
    """`create_app` under uvicorn on a free port, until the block ends."""
    settings = settings_for(tmp_path, port=0, token=PRESET)
    app = create_app(settings)
    async with serve_in_loop(app) as server:
        yield Served(app.state.hub, f"{server.url}/mcp")


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[Served]:
    async with serving(tmp_path) as running:
        yield running


@contextlib.asynccontextmanager
async def mcp_client(url: str, token: str, mode: str = "auto") -> AsyncIterator[Client]:
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx2.AsyncClient(headers=headers, timeout=WAIT, trust_env=False) as http:
        transport = streamable_http_client(url, http_client=http)
        async with Client(transport, mode=mode) as client:
            yield client


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_a_client_with_a_token_defines_starts_and_waits_with_progress(
    served: Served, mode: str
) -> None:
    async with mcp_client(served.url, PRESET, mode) as client:
        tools = (await client.list_tools()).tools
        assert "run_wait" in {tool.name for tool in tools}
        defined = await call(client, "workflow_define", document=HELLO)
        assert defined["task_count"] == 3
        started = await call(client, "run_start", workflow="hello")
        seen: list[float] = []

        async def on_progress(progress: float, total: float | None, message: str | None) -> None:
            seen.append(progress)

        with anyio.fail_after(WAIT):
            result = await client.call_tool(
                "run_wait",
                {"run_id": started["id"], "timeout_seconds": WAIT},
                progress_callback=on_progress,
            )
        assert data(result)["status"] == "succeeded"
        assert seen
        assert seen[-1] == 3


async def test_a_viewer_token_reads_but_may_not_start_runs(served: Served) -> None:
    _, viewer = await served.hub.tokens.create(Role.VIEWER, "watcher")
    async with mcp_client(served.url, viewer) as client:
        assert (await call(client, "run_list"))["runs"] == []
        with anyio.fail_after(WAIT):
            refused = await client.call_tool("workflow_define", {"document": HELLO})
        assert refused.is_error
        assert "role is viewer" in text(refused)


@pytest.mark.parametrize("token", [None, "aop_not-a-real-token"])
async def test_without_a_valid_token_the_endpoint_answers_401_and_logs_it(
    served: Served, token: str | None, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="aop_mcp.mcp.auth")
    async with served.http(token) as http:
        response = await http.post(served.url, json=INITIALIZE, headers=MCP_HEADERS)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    (record,) = [r for r in caplog.records if r.name == "aop_mcp.mcp.auth"]
    assert "refused MCP request POST /mcp" in record.getMessage()
    if token:
        assert token not in caplog.text


async def test_a_foreign_host_header_is_refused_even_with_a_token(served: Served) -> None:
    async with served.http(PRESET) as http:
        response = await http.post(
            served.url, json=INITIALIZE, headers={**MCP_HEADERS, "Host": "evil.example:80"}
        )
        assert response.status_code in {400, 403, 421}
        allowed = await http.post(served.url, json=INITIALIZE, headers=MCP_HEADERS)
        assert allowed.status_code == 200


async def test_healthz_needs_no_token(served: Served) -> None:
    async with served.http(None) as http:
        response = await http.get(served.url.removesuffix("/mcp") + "/healthz")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


@pytest.mark.slow
async def test_first_start_prints_an_admin_token_once_with_the_urls(tmp_path: Path) -> None:
    port, db = free_port(), tmp_path / "aop.db"
    args = ("serve", "--port", str(port), "--db", str(db))
    with spawned(tmp_path, *args, seconds=WAIT) as proc:
        said = read_until(proc.stderr, "aop-mcp serving on", WAIT)
        assert f"MCP: http://127.0.0.1:{port}/mcp" in said
        assert f"REST: http://127.0.0.1:{port}/api/v1" in said
        assert f"Dashboard: http://127.0.0.1:{port}/" in said
        token = said.split("token: ", 1)[1].split()[0]
        async with mcp_client(f"http://127.0.0.1:{port}/mcp", token) as client:
            assert (await call(client, "workflow_list"))["workflows"] == []
        assert stop(proc) == 0
    with spawned(tmp_path, *args, seconds=WAIT) as again:
        said = read_until(again.stderr, "aop-mcp serving on", WAIT)
        assert "token:" not in said  # shown once: a token exists now
        assert stop(again) == 0
