"""Shared helpers for engine tests: a hub on a real SQLite file, and event waits."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio

from aop_mcp.config import Settings
from aop_mcp.engine import Clock
from aop_mcp.hub import Hub, open_hub
from aop_mcp.models import Event

WAIT = 20  # seconds any single wait in a test may take before it fails


#: Tests read and write files under tmp_path, which the sandbox's private /tmp hides: local
#: tasks run unsandboxed and may be defined over MCP and HTTP unless a test says otherwise.
UNSANDBOXED: dict[str, Any] = {"sandbox": "false", "allow_unsandboxed": True}


def settings_for(tmp_path: Path, **overrides: Any) -> Settings:
    values = {**UNSANDBOXED, **overrides}
    return Settings(data_dir=tmp_path / "data", db=tmp_path / "aop.db", **values)


@asynccontextmanager
async def hub_on(
    tmp_path: Path, *, clock: Clock | None = None, adopt: bool = True, **overrides: Any
) -> AsyncIterator[Hub]:
    """A hub on `tmp_path/aop.db`, opened and closed like the server does."""
    async with open_hub(settings_for(tmp_path, **overrides), adopt_orphans=adopt, clock=clock) as h:
        yield h


async def next_event(
    queue: asyncio.Queue[Event], event_type: str, task_id: str | None = None
) -> Event:
    """The next event of that type (and task) from a bus subscription, within WAIT seconds."""
    with anyio.fail_after(WAIT):
        while True:
            event = await queue.get()
            if event.type == event_type and (task_id is None or event.task_id == task_id):
                return event


async def run_to_end(hub: Hub, document: str | dict[str, Any], **inputs: Any) -> str:
    """Define and start a workflow, wait for the run to end, return its id."""
    version, _ = await hub.workflows.define(document)
    run = await hub.runs.start(version.name, inputs)
    with anyio.fail_after(WAIT):
        await hub.runs.wait(run.id)
    return run.id


def python_task(task_id: str, function: str, **fields: Any) -> dict[str, Any]:
    args = fields.pop("args", {"name": task_id})
    return {
        "id": task_id,
        "run": {"executor": "python", "function": f"engine_callables:{function}", "args": args},
        **fields,
    }
