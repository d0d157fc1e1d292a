"""MCP round-trip latency of the hub next to a bare MCP SDK server, in the same run.

For each transport (streamable HTTP, stdio) it times `--calls` sequential tool calls through
the SDK's own client: `run_status` on `aop serve` / `aop stdio` (with a finished run in the
store, a bearer token on HTTP) and `echo` on tools/bare_mcp_server.py. Prints one JSON line
per (transport, server) with p50/p99 in ms, then the hub/bare ratio of p50 per transport
(target: at most 1.5).

Usage: uv run python tools/bench_mcp.py [--calls N]
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import httpx2
from anyio.abc import Process
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

HERE = Path(__file__).parent
BARE = str(HERE / "bare_mcp_server.py")
WORKFLOW = {
    "name": "bench",
    "tasks": [{"id": "only", "run": {"executor": "local", "command": ["true"]}}],
}
Call = Callable[[], Awaitable[object]]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def wait_for_port(port: int, process: Process, deadline: float = 30) -> None:
    """Return once something accepts connections on `port` (the server is up)."""
    with anyio.fail_after(deadline):
        while True:
            if process.returncode is not None:
                raise SystemExit(f"server exited with {process.returncode} before listening")
            try:
                stream = await anyio.connect_tcp("127.0.0.1", port)
            except OSError:
                await anyio.sleep(0.05)  # a benchmark's start-up poll, not a test
                continue
            await stream.aclose()
            return


@asynccontextmanager
async def http_server(command: list[str], port: int, env: dict[str, str]) -> AsyncIterator[None]:
    process = await anyio.open_process(command, env=env, stderr=subprocess.DEVNULL)
    try:
        await wait_for_port(port, process)
        yield
    finally:
        process.terminate()
        with anyio.fail_after(30):
            await process.wait()


async def measure(call: Call, calls: int) -> dict[str, float]:
    for _ in range(20):  # warm up: connections, caches, lazy imports
        await call()
    samples = []
    for _ in range(calls):
        started = time.perf_counter()
        await call()
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    return {
        "p50_ms": round(statistics.median(samples), 3),
        "p99_ms": round(samples[int(len(samples) * 0.99) - 1], 3),
    }


async def hub_calls(client: Client) -> Call:
    """Define and finish one run, then return a `run_status` call on it."""
    await client.call_tool("workflow_define", {"document": WORKFLOW})
    started = await client.call_tool("run_start", {"workflow": "bench"})
    run_id = started.structured_content["id"]
    await client.call_tool("run_wait", {"run_id": run_id, "timeout_seconds": 30})

    async def call() -> object:
        result = await client.call_tool("run_status", {"run_id": run_id})
        assert not result.is_error, result
        return result

    return call


async def bare_calls(client: Client) -> Call:
    async def call() -> object:
        return await client.call_tool("echo", {"text": "hi"})

    return call


async def over_http(url: str, token: str | None, prepare, calls: int) -> dict[str, float]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=30) as http,
        Client(streamable_http_client(url, http_client=http)) as client,
    ):
        return await measure(await prepare(client), calls)


async def over_stdio(params: StdioServerParameters, prepare, calls: int) -> dict[str, float]:
    async with Client(params) as client:
        return await measure(await prepare(client), calls)


async def bench(calls: int) -> list[dict[str, object]]:
    lines: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory(prefix="aop-bench-mcp-") as tmp:
        token = "aop_bench_" + secrets.token_urlsafe(16)
        env = {**os.environ, "AOP_DATA_DIR": tmp, "AOP_TOKEN": token}
        hub_port, bare_port = free_port(), free_port()
        aop = [sys.executable, "-m", "aop_mcp"]
        serve = [*aop, "serve", "--host", "127.0.0.1", "--port", str(hub_port)]
        async with http_server(serve, hub_port, env):
            url = f"http://127.0.0.1:{hub_port}/mcp"
            lines.append(
                {"transport": "http", "server": "hub"}
                | await over_http(url, token, hub_calls, calls)
            )
        async with http_server([sys.executable, BARE, "http", str(bare_port)], bare_port, env):
            url = f"http://127.0.0.1:{bare_port}/mcp"
            lines.append(
                {"transport": "http", "server": "bare"}
                | await over_http(url, None, bare_calls, calls)
            )
        stdio_env = {**env, "AOP_DB": str(Path(tmp) / "stdio.db")}
        hub_stdio = StdioServerParameters(
            command=sys.executable, args=["-m", "aop_mcp", "stdio"], env=stdio_env
        )
        lines.append(
            {"transport": "stdio", "server": "hub"} | await over_stdio(hub_stdio, hub_calls, calls)
        )
        bare_stdio = StdioServerParameters(command=sys.executable, args=[BARE, "stdio"], env=env)
        lines.append(
            {"transport": "stdio", "server": "bare"}
            | await over_stdio(bare_stdio, bare_calls, calls)
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=500)
    args = parser.parse_args()
    lines = anyio.run(bench, args.calls)
    for line in lines:
        print(json.dumps(line), flush=True)
    for transport in ("http", "stdio"):
        hub, bare = (
            next(x for x in lines if x["transport"] == transport and x["server"] == s)
            for s in ("hub", "bare")
        )
        ratio = hub["p50_ms"] / bare["p50_ms"]
        print(
            json.dumps(
                {
                    "transport": transport,
                    "hub_over_bare_p50": round(ratio, 2),
                    "target": 1.5,
                    "met": ratio <= 1.5,
                }
            )
        )


if __name__ == "__main__":
    main()
