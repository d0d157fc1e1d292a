"""Server-sent events of the event log: the persisted backlog first, then live events.

A stream subscribes to the bus *before* it reads the backlog, so an event committed while the
backlog is read is in the queue too; live events at or below the last seq sent are dropped.
The union is every event after the client's `Last-Event-ID`, once each, in seq order.
A comment line every `heartbeat` seconds keeps proxies from closing a quiet stream.

Each message is `id: <seq>`, `event: <type>`, `data: <event as JSON>`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from enum import Enum

from aop_mcp.api import views
from aop_mcp.hub import Hub
from aop_mcp.models import Event
from aop_mcp.streams import HEADERS, HEARTBEAT, HEARTBEAT_SECONDS, EventStreams

__all__ = ["HEADERS", "HEARTBEAT", "HEARTBEAT_SECONDS", "EventStreams", "event_stream", "message"]

BACKLOG_PAGE = 500


def message(event: Event) -> bytes:
    """One event as an SSE message."""
    data = json.dumps(views.event(event).model_dump(mode="json"), separators=(",", ":"))
    return f"id: {event.seq}\nevent: {event.type}\ndata: {data}\n\n".encode()


class _Tick(Enum):
    HEARTBEAT = "heartbeat"
    CLOSED = "closed"


class _Live:
    """Waits on the bus queue, the heartbeat and the streams' closing switch at once."""

    def __init__(self, queue: asyncio.Queue[Event], closing: asyncio.Event) -> None:
        self._queue = queue
        self._closed = asyncio.ensure_future(closing.wait())
        self._getter: asyncio.Future[Event] | None = None

    async def next(self, heartbeat: float) -> Event | _Tick:
        # The getter survives a heartbeat: cancelling it could lose an event it just took.
        if self._getter is None:
            self._getter = asyncio.ensure_future(self._queue.get())
        waiting = {self._getter, self._closed}
        await asyncio.wait(waiting, timeout=heartbeat, return_when=asyncio.FIRST_COMPLETED)
        if self._closed.done():
            return _Tick.CLOSED
        if not self._getter.done():
            return _Tick.HEARTBEAT
        event, self._getter = self._getter.result(), None
        return event

    def stop(self) -> None:
        for future in (self._getter, self._closed):
            if future is not None:
                future.cancel()


async def event_stream(
    hub: Hub, streams: EventStreams, *, run_id: str | None, after: int
) -> AsyncIterator[bytes]:
    """The SSE body: events with seq > `after` (of one run, or all), until closed."""
    async with hub.bus.subscribe(run_id) as queue:
        last = after
        async for event in _backlog(hub, run_id, last):
            yield message(event)
            last = event.seq
        live = _Live(queue, streams.closing)
        try:
            while (item := await live.next(streams.heartbeat)) is not _Tick.CLOSED:
                if item is _Tick.HEARTBEAT:
                    yield HEARTBEAT
                elif _may_have_missed(queue, item, last, run_id):
                    _drain(queue)
                    async for event in _backlog(hub, run_id, last):
                        yield message(event)
                        last = event.seq
                elif item.seq > last:
                    yield message(item)
                    last = item.seq
        finally:
            live.stop()


async def _backlog(hub: Hub, run_id: str | None, after: int) -> AsyncIterator[Event]:
    """Persisted events with seq > `after`, page by page."""
    while True:
        page = await hub.store.list_events(run_id=run_id, after=after, limit=BACKLOG_PAGE)
        for event in page:
            yield event
        if len(page) < BACKLOG_PAGE:
            return
        after = page[-1].seq


def _may_have_missed(
    queue: asyncio.Queue[Event], item: Event, last: int, run_id: str | None
) -> bool:
    """Whether events may be missing between `last` and `item`: then read the log instead.

    The bus drops the oldest event of a full queue; and in the stream of all events a jump
    in seq means an event arrived out of order or came from another engine's process.
    """
    if queue.maxsize > 0 and queue.qsize() >= queue.maxsize - 1:
        return True
    return run_id is None and item.seq > last + 1


def _drain(queue: asyncio.Queue[Event]) -> None:
    with contextlib.suppress(asyncio.QueueEmpty):
        while True:
            queue.get_nowait()
