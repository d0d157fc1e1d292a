"""The EventBus port and its in-process implementation.

Events are persisted by the Store first; the bus only fans them out to live listeners.
A listener that falls behind loses nothing: it can read the Store from its last seq.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Protocol

from aop_mcp.models import Event


class EventBus(Protocol):
    def publish(self, events: Sequence[Event]) -> None:
        """Hand committed events to every subscriber; never blocks."""
        ...

    def subscribe(self, run_id: str | None = None) -> AsyncIterator[asyncio.Queue[Event]]:
        """An async context manager yielding a queue of events (of one run, or all)."""
        ...


class InMemoryEventBus:
    """Fan-out to asyncio queues. A full queue drops its oldest event (see module doc)."""

    def __init__(self, queue_size: int = 10_000) -> None:
        self._queue_size = queue_size
        self._subscribers: dict[asyncio.Queue[Event], str | None] = {}

    def publish(self, events: Sequence[Event]) -> None:
        if not self._subscribers:
            return
        for queue, run_id in self._subscribers.items():
            for event in events:
                if run_id is None or event.run_id == run_id:
                    if queue.full():
                        queue.get_nowait()
                    queue.put_nowait(event)

    @asynccontextmanager
    async def subscribe(self, run_id: str | None = None) -> AsyncIterator[asyncio.Queue[Event]]:
        queue: asyncio.Queue[Event] = asyncio.Queue(self._queue_size)
        self._subscribers[queue] = run_id
        try:
            yield queue
        finally:
            del self._subscribers[queue]
