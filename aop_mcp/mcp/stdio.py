"""`aop stdio`: the MCP server over stdin/stdout for a local client that started this process.

stdout carries the protocol and nothing else (logging goes to stderr). The client is the
parent process, so it is trusted: the session's principal is `security.principal.LOCAL`.

Start-up is on the client's clock, so `initialize` is answered as early as possible: the
SDK is the only big import before the server listens; the hub (engine, store, templates) is
imported in a worker thread and opened while the server already answers. A tool called in
that window waits for the hub.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import sys
from typing import TYPE_CHECKING

from aop_mcp.config import Settings
from aop_mcp.errors import AopError

if TYPE_CHECKING:
    from aop_mcp.mcp.server import McpDoor


def run_stdio(settings: Settings) -> int:
    """Serve MCP on stdin/stdout until stdin closes; returns 0. Raises the hub's AopError."""
    _log_to_stderr()
    try:
        asyncio.run(_serve(settings))
    except ExceptionGroup as group:
        # The hub failed to open (bad database, ...): report it as the CLI reports errors.
        first = next((e for e in group.exceptions if isinstance(e, AopError)), None)
        if first is None:
            raise
        raise first from None
    return 0


def _log_to_stderr() -> None:
    # Before the SDK configures logging: its basicConfig is then a no-op, and no log record
    # can ever reach stdout.
    logging.basicConfig(
        level=logging.WARNING,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


def _skip_sdk_logging_setup() -> None:
    """MCPServer() imports rich (about 0.1 s) for a log handler basicConfig then ignores.

    Logging is configured already (`_log_to_stderr`), so that set-up would do nothing here;
    skipping it keeps rich off the path to `initialize`. Only this process is affected.
    """
    import mcp.server.mcpserver.server as sdk_server

    sdk_server.configure_logging = lambda *args, **kwargs: None


async def _serve(settings: Settings) -> None:
    # Imported here, not at the top: the CLI may import this module for commands that
    # never serve, and the SDK is the slowest import of all.
    _skip_sdk_logging_setup()
    from aop_mcp.mcp.server import create_mcp

    door = create_mcp()
    stdin_closed = asyncio.Event()
    async with asyncio.TaskGroup() as group:
        group.create_task(_hold_hub(door, settings, stdin_closed), name="aop-mcp hub")
        await door.server.run_stdio_async()
        stdin_closed.set()


async def _hold_hub(door: McpDoor, settings: Settings, stdin_closed: asyncio.Event) -> None:
    """Open the hub, serve it to the tools until stdin closes, then close it."""
    # In a thread, so the event loop keeps answering the client meanwhile.
    hub_module = await asyncio.to_thread(importlib.import_module, "aop_mcp.hub")
    async with hub_module.open_hub(settings, adopt_orphans=True) as hub, door.attached(hub):
        await stdin_closed.wait()
