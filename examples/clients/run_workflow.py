"""Run a workflow through aop-mcp's MCP tools, the way any MCP client would.

Usage:
    uv run python examples/clients/run_workflow.py                  # stdio: starts `aop stdio`
    uv run python examples/clients/run_workflow.py --db /tmp/aop.db # ... on that database
    uv run python examples/clients/run_workflow.py --url http://127.0.0.1:8765/mcp --token TOKEN
                                                   # HTTP, against `aop serve`

Over HTTP the token may also come from `AOP_TOKEN` (the first admin token `aop serve`
printed, or one from `aop token create --role operator`).

It defines a workflow (default: examples/hello.yaml) with `workflow_define`, starts it with
`run_start`, follows it with `run_wait` (printing each progress notification as it arrives),
prints each task's final status and the run's graph (the `aop://runs/{id}/graph` resource, a
Mermaid flowchart). Exits 0 when the run succeeded, 1 otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx2  # the HTTP client the MCP SDK uses
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

ProgressFn = Callable[[float, float | None, str | None], Awaitable[None]]
HELLO = Path(__file__).resolve().parents[1] / "hello.yaml"


def connect(args: argparse.Namespace, http: httpx2.AsyncClient) -> Client:
    """A client for `aop stdio` (started here, as a child process) or for `aop serve`'s /mcp."""
    if args.url:
        return Client(streamable_http_client(args.url, http_client=http))
    db = ["--db", args.db] if args.db else []
    # Only PATH, HOME and a few more reach a stdio server by default: pass the AOP_* settings.
    aop_env = {key: value for key, value in os.environ.items() if key.startswith("AOP_")}
    command = [sys.executable, "-m", "aop_mcp", "stdio", *db]  # the same as `aop stdio`
    return Client(StdioServerParameters(command=command[0], args=command[1:], env=aop_env))


async def call(
    client: Client, tool: str, progress: ProgressFn | None = None, **arguments: Any
) -> dict[str, Any]:
    """Call a tool; a tool error (bad input, unknown run, ...) ends the script with its text."""
    result = await client.call_tool(tool, arguments, progress_callback=progress)
    if result.is_error or result.structured_content is None:
        text = " ".join(getattr(block, "text", "") for block in result.content)
        raise SystemExit(f"{tool} failed: {text}")
    return result.structured_content


async def on_progress(progress: float, total: float | None, message: str | None) -> None:
    """Called by the SDK for each progress notification run_wait sends (a task finished)."""
    of = f"/{total:g}" if total else ""
    print(f"progress {progress:g}{of}: {message}", flush=True)


async def main(args: argparse.Namespace) -> int:
    headers = {"Authorization": f"Bearer {args.token}"} if args.token else {}
    # Long read timeout: run_wait holds its response stream open while the run goes on.
    timeout = httpx2.Timeout(30.0, read=330.0)  # (the HTTP client goes unused over stdio)
    async with (
        httpx2.AsyncClient(headers=headers, timeout=timeout) as http,
        connect(args, http) as client,
    ):
        defined = await call(client, "workflow_define", document=args.document)
        print(f"defined {defined['name']} v{defined['version']} ({defined['task_count']} tasks)")
        run = await call(client, "run_start", workflow=defined["name"])
        print(f"started run {run['id']}")

        # run_wait returns when the run ends or after timeout_seconds; `finished` says which.
        while True:
            run = await call(client, "run_wait", on_progress, run_id=run["id"], timeout_seconds=60)
            if run["finished"]:
                break

        print(f"\nrun {run['id']}: {run['status']}")
        for task in run["tasks"]:
            why = (task["error"] or {}).get("message") or task["skip_reason"] or ""
            took = "" if task["duration_seconds"] is None else f"{task['duration_seconds']:.2f}s"
            print(f"  {task['task_id']:<12} {task['status']:<10} {took:>7}  {why}".rstrip())

        graph = await client.read_resource(f"aop://runs/{run['id']}/graph")
        print("\n" + "".join(getattr(part, "text", "") for part in graph.contents))
    return 0 if run["status"] == "succeeded" else 1


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Run a workflow through aop-mcp's MCP tools.")
    parser.add_argument("--url", help="MCP endpoint of `aop serve`; omit to start `aop stdio`")
    parser.add_argument("--token", default=os.environ.get("AOP_TOKEN"), help="bearer token")
    parser.add_argument("--db", help="database for `aop stdio` (default: aop's own)")
    parser.add_argument("--file", default=str(HELLO), help="workflow document (YAML or JSON)")
    args = parser.parse_args()
    args.document = Path(args.file).read_text()  # YAML text: the server parses it
    if args.url and not args.token:
        parser.error("--url needs --token (or AOP_TOKEN): /mcp answers 401 without one")
    return args


if __name__ == "__main__":
    sys.exit(asyncio.run(main(parse_args())))
