"""Shared helpers for MCP tests: workflow documents, calling tools and reading their results."""

from __future__ import annotations

import json
from typing import Any

import anyio
import mcp_types as types
from mcp import Client

WAIT = 20  # seconds any single wait in a test may take before it fails

INITIALIZE = {  # a raw JSON-RPC `initialize` request, as a client sends it first
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-11-25",
        "capabilities": {},
        "clientInfo": {"name": "raw", "version": "0"},
    },
}

HELLO = """
name: hello
description: two tasks, the second reads the first
tasks:
  - id: greet
    run: {executor: local, command: [echo, "hello"]}
  - id: shout
    needs: [greet]
    run:
      executor: local
      shell: printf '%s!\\n' "$TEXT" | tr a-z A-Z
      env: {TEXT: "{{ tasks.greet.output }}"}
  - id: done
    needs: [shout]
    run: {executor: local, command: [echo, "done"]}
"""

SLOW = {
    "name": "slow",
    "tasks": [{"id": "nap", "run": {"executor": "local", "command": ["sleep", "60"]}}],
}


def needs_flag(name: str = "needs-flag") -> dict[str, Any]:
    """A workflow whose task fails until the file named by input `flag` exists."""
    return {
        "name": name,
        "inputs": {"flag": {"type": "string"}},
        "tasks": [
            {
                "id": "check",
                "run": {
                    "executor": "local",
                    "shell": 'test -f "$FLAG" || { echo "no flag" >&2; exit 4; }; echo found',
                    "env": {"FLAG": "{{ inputs.flag }}"},
                },
            },
            {
                "id": "after",
                "needs": ["check"],
                "run": {"executor": "local", "command": ["echo", "after"]},
            },
        ],
    }


async def call(client: Client, tool: str, **arguments: Any) -> dict[str, Any]:
    """The structured result of calling `tool`, which must succeed within WAIT seconds."""
    with anyio.fail_after(WAIT):
        return data(await client.call_tool(tool, arguments))


async def failing(client: Client, tool: str, **arguments: Any) -> str:
    """The error text of a call that must fail as a tool error."""
    with anyio.fail_after(WAIT):
        result = await client.call_tool(tool, arguments)
    assert result.is_error, result
    return text(result)


def data(result: types.CallToolResult) -> dict[str, Any]:
    """The structured result of a successful call (fails with the error text otherwise)."""
    assert not result.is_error, text(result)
    assert result.structured_content is not None
    return result.structured_content


def text(result: types.CallToolResult) -> str:
    """The text content of a result (an error's message)."""
    return "\n".join(block.text for block in result.content if isinstance(block, types.TextContent))


def resource_text(result: types.ReadResourceResult) -> str:
    (content,) = result.contents
    assert isinstance(content, types.TextResourceContents)
    return content.text


def resource_json(result: types.ReadResourceResult) -> Any:
    return json.loads(resource_text(result))
