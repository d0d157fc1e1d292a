"""Resource subscriptions: a client subscribed to `aop://runs/{id}` hears when the run changes.

Two protocol eras, one source. The hub's event bus says which runs changed; `RunUpdates.pump`
turns each burst of events into one `resources/updated` per changed resource:

- 2026-07-28 clients open a `subscriptions/listen` stream naming the URIs. The SDK serves it
  from the server's `SubscriptionBus`; publishing `ResourceUpdated` there reaches them (this
  is what `ctx.notify_resource_updated` does inside a request).
- 2025-11-25 clients send `resources/subscribe`. MCPServer has no handler for it, so one is
  installed here; it remembers the client's connection, and the subscription ends with that
  connection (its exit stack), or with `resources/unsubscribe`.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from typing import TYPE_CHECKING, Any

import mcp_types as types
from mcp.server.connection import Connection
from mcp.server.context import ServerRequestContext
from mcp.server.mcpserver import MCPServer
from mcp.server.subscriptions import ResourceUpdated, SubscriptionBus

from aop_mcp.mcp.resources import run_uris
from aop_mcp.models import Event

if TYPE_CHECKING:
    from aop_mcp.hub import Hub

logger = logging.getLogger(__name__)


class RunUpdates:
    """Fans the hub's run events out to subscribed MCP clients of both protocol eras."""

    def __init__(self, bus: SubscriptionBus) -> None:
        self._bus = bus
        self._connections: dict[str, set[Connection]] = defaultdict(set)

    def install(self, server: MCPServer) -> None:
        """Serve `resources/subscribe` and `resources/unsubscribe` on `server`."""
        # MCPServer (SDK 2.3) exposes no way to add these handlers; registering them on its
        # low-level server is what makes the capability `resources.subscribe` true as well.
        lowlevel = server._lowlevel_server
        lowlevel.add_request_handler(
            "resources/subscribe", types.SubscribeRequestParams, self._on_subscribe
        )
        lowlevel.add_request_handler(
            "resources/unsubscribe", types.UnsubscribeRequestParams, self._on_unsubscribe
        )

    def subscribers(self, uri: str) -> int:
        """How many 2025-era connections are subscribed to `uri`."""
        return len(self._connections.get(uri, ()))

    async def _on_subscribe(
        self, ctx: ServerRequestContext[Any], params: types.SubscribeRequestParams
    ) -> types.EmptyResult:
        connection = _connection_of(ctx)
        uri = str(params.uri)
        if connection not in self._connections[uri]:
            self._connections[uri].add(connection)
            connection.exit_stack.callback(self._forget, uri, connection)
        return types.EmptyResult()

    async def _on_unsubscribe(
        self, ctx: ServerRequestContext[Any], params: types.UnsubscribeRequestParams
    ) -> types.EmptyResult:
        self._forget(str(params.uri), _connection_of(ctx))
        return types.EmptyResult()

    def _forget(self, uri: str, connection: Connection) -> None:
        subscribed = self._connections.get(uri)
        if subscribed is not None:
            subscribed.discard(connection)
            if not subscribed:
                del self._connections[uri]

    async def pump(self, hub: Hub) -> None:
        """Until cancelled: after each burst of hub events, announce the runs that changed."""
        async with hub.bus.subscribe() as queue:
            while True:
                changed = {(await queue.get()).run_id}
                changed |= _drain(queue)
                for run_id in sorted(changed):
                    await self.announce(run_id)

    async def announce(self, run_id: str) -> None:
        """Tell every subscriber of the run's resources that they changed."""
        for uri in run_uris(run_id):
            await self._bus.publish(ResourceUpdated(uri=uri))
            for connection in list(self._connections.get(uri, ())):
                await connection.send_resource_updated(uri)  # best effort: never raises


def _drain(queue: asyncio.Queue[Event]) -> set[str]:
    runs = set()
    while not queue.empty():
        runs.add(queue.get_nowait().run_id)
    return runs


def _connection_of(ctx: ServerRequestContext[Any]) -> Connection:
    # The per-request session wraps the connection; SDK 2.3 has no public accessor for it,
    # and the connection (not the request) is what a subscription lives as long as.
    return ctx.session._connection
