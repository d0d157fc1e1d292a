"""What every server-sent event stream of the HTTP doors shares (REST's and the dashboard's).

uvicorn waits for open responses before it shuts an app down, and an event stream never ends
by itself: the server closes each door's `EventStreams` when it begins to shut down.
"""

from __future__ import annotations

import asyncio

#: Seconds between keep-alive comments, so proxies do not close a quiet stream.
HEARTBEAT_SECONDS = 15.0
HEARTBEAT = b": keep-alive\n\n"
#: Response headers of a stream: never cached, never buffered by a proxy.
HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


class EventStreams:
    """The event streams of one door: their heartbeat, and a switch that ends them all."""

    def __init__(self, heartbeat: float = HEARTBEAT_SECONDS) -> None:
        self.heartbeat = heartbeat
        self.closing = asyncio.Event()

    def close(self) -> None:
        """End every open stream (after the message it is sending) and every new one."""
        self.closing.set()
