"""Driving a run to its end from the CLI: live progress on stderr, Ctrl-C cancels."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from collections.abc import AsyncIterator, Iterator
from typing import TextIO

from aop_mcp.cli.render import ProgressLines
from aop_mcp.errors import RunFinished
from aop_mcp.hub import Hub
from aop_mcp.models import Event, Run


class Progress:
    """Prints the events of the followed run, one line each, as they arrive."""

    def __init__(self, queue: asyncio.Queue[Event] | None, out: TextIO) -> None:
        self._queue = queue
        self._out = out
        self._lines = ProgressLines()
        self._run_id: str | None = None

    def follow(self, run_id: str) -> None:
        """Show only this run's events from now on."""
        self._run_id = run_id

    async def pump(self) -> None:
        """Print events until cancelled."""
        assert self._queue is not None
        while True:
            self._show(await self._queue.get())

    def drain(self) -> None:
        """Print the events already queued (the run's last ones arrive with its end)."""
        while self._queue is not None and not self._queue.empty():
            self._show(self._queue.get_nowait())

    def _show(self, event: Event) -> None:
        if self._run_id is not None and event.run_id != self._run_id:
            return
        line = self._lines.line(event)
        if line is not None:
            print(line, file=self._out, flush=True)


@contextlib.asynccontextmanager
async def progress(hub: Hub, *, enabled: bool) -> AsyncIterator[Progress]:
    """Subscribe before the run starts, so its first events are shown too."""
    if not enabled:
        yield Progress(None, sys.stderr)
        return
    async with hub.bus.subscribe() as queue:
        shown = Progress(queue, sys.stderr)
        pump = asyncio.create_task(shown.pump())
        try:
            yield shown
        finally:
            pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pump
            shown.drain()


@contextlib.contextmanager
def ctrl_c() -> Iterator[asyncio.Event]:
    """While inside, Ctrl-C sets the yielded event instead of raising KeyboardInterrupt.

    Enter it before the run starts: a Ctrl-C that comes while it starts still cancels it.
    """
    interrupted = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGINT, interrupted.set)
    try:
        yield interrupted
    finally:
        loop.remove_signal_handler(signal.SIGINT)


async def wait_or_cancel(hub: Hub, run_id: str, interrupted: asyncio.Event) -> tuple[Run, bool]:
    """Wait for the run to end; once `interrupted` is set, cancel it and wait for that.

    Returns the ended run and whether the user interrupted.
    """
    ended = asyncio.ensure_future(hub.runs.wait(run_id))
    asked = asyncio.ensure_future(interrupted.wait())
    await asyncio.wait((ended, asked), return_when=asyncio.FIRST_COMPLETED)
    asked.cancel()
    if ended.done():
        return ended.result(), False
    print(f"aop: cancelling run {run_id} (interrupted)", file=sys.stderr, flush=True)
    with contextlib.suppress(RunFinished):  # it may have ended meanwhile
        await hub.runs.cancel(run_id)
    return await ended, True
