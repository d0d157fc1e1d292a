"""Where tools find the hub: one small holder, set by whoever opened the hub.

The stdio runner answers `initialize` while the hub is still opening, so a tool called in
that window waits for it (bounded) instead of failing.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from aop_mcp.errors import EngineStopped

if TYPE_CHECKING:  # the hub (engine, store, templates) loads while stdio already answers
    from aop_mcp.hub import Hub

#: How long a tool waits for a hub that is still opening before it reports EngineStopped.
HUB_WAIT_SECONDS = 30.0


class HubHolder:
    """Holds the open hub of this process (or nothing, before it opens and after it closes)."""

    def __init__(self) -> None:
        self._hub: Hub | None = None
        self._ready = asyncio.Event()

    def set(self, hub: Hub) -> None:
        """Publish the open hub to every tool."""
        self._hub = hub
        self._ready.set()

    def clear(self) -> None:
        """Withdraw the hub (it is closing)."""
        self._hub = None
        self._ready.clear()

    def get_hub(self) -> Hub:
        """The open hub; raises EngineStopped when it is not open (yet or any more)."""
        if self._hub is None:
            raise EngineStopped()
        return self._hub

    async def wait_hub(self, timeout: float = HUB_WAIT_SECONDS) -> Hub:  # noqa: ASYNC109
        """The open hub, waiting up to `timeout` seconds for one that is still opening."""
        if self._hub is None:
            try:
                async with asyncio.timeout(timeout):
                    await self._ready.wait()
            except TimeoutError:
                raise EngineStopped() from None
        return self.get_hub()
