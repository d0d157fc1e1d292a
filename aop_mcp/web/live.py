"""A run page, live: its parts re-rendered and sent as server-sent events as the run moves.

The page connects with htmx's SSE extension; each message is one part of the page (`summary`,
`dag`, `tasks`, `timeline`) as HTML, swapped in place. A burst of events becomes one
re-render: the stream drains what queued up before it reads the run again. Only parts that
changed are sent. Runs that another process drives publish nothing on this server's bus, so
the stream also looks every `POLL_SECONDS`. When the run has ended the stream sends `done`
(the page closes it) and ends; a revoked token ends it too.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from aop_mcp.models import Event
from aop_mcp.streams import HEADERS, HEARTBEAT, HEARTBEAT_SECONDS, EventStreams
from aop_mcp.web.auth import Handler, WebContext
from aop_mcp.web.runs import live_fragments, live_view

#: How often a stream re-reads a run that no event announced (runs driven elsewhere).
POLL_SECONDS = 2.0


def message(event: str, html: str) -> bytes:
    """One SSE message whose data is HTML (one `data:` line per line of it)."""
    lines = "".join(f"data: {line}\n" for line in html.splitlines() or [""])
    return f"event: {event}\n{lines}\n".encode()


def run_live(streams: EventStreams) -> Handler:
    """The handler of `GET /runs/{run_id}/live`, ending its streams when `streams` closes."""

    async def live(request: Request, ctx: WebContext) -> Response:
        """The run page's live parts, as server-sent events."""
        run_id = request.path_params["run_id"]
        await ctx.hub.runs.get(run_id)  # an unknown run is a 404 now, not an empty stream
        return StreamingResponse(
            _stream(ctx, run_id, streams), media_type="text/event-stream", headers=HEADERS
        )

    return live


async def _stream(ctx: WebContext, run_id: str, streams: EventStreams) -> AsyncIterator[bytes]:
    sent: dict[str, str] = {}
    async with ctx.hub.bus.subscribe(run_id) as queue:
        while not streams.closing.is_set():
            if await ctx.hub.tokens.verify(ctx.session.token) is None:
                return
            view = await live_view(ctx, run_id)
            for name, html in live_fragments(ctx, view).items():
                if sent.get(name) != html:
                    sent[name] = html
                    yield message(name, html)
            if view["run"].status.finished:
                yield message("done", "")
                return
            # This engine's events reach the bus; another process's only reach the database.
            wait = HEARTBEAT_SECONDS if ctx.hub.engine.drives(run_id) else POLL_SECONDS
            if not await _next_change(queue, streams.closing, wait):
                yield HEARTBEAT


async def _next_change(queue: asyncio.Queue[Event], closing: asyncio.Event, wait: float) -> bool:
    """Wait for an event of the run (True), else the poll interval or closing (False).

    Events already queued are drained: one re-render covers them all.
    """
    getter = asyncio.ensure_future(queue.get())
    closed = asyncio.ensure_future(closing.wait())
    try:
        await asyncio.wait({getter, closed}, timeout=wait, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for future in (getter, closed):
            future.cancel()
    got = getter.done() and not getter.cancelled()
    with contextlib.suppress(asyncio.QueueEmpty):
        while True:
            queue.get_nowait()
    return got
