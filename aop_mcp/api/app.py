"""`create_api`: the REST API as a Starlette app, mounted by the server at `/api/v1`."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from aop_mcp.api.openapi import build_document
from aop_mcp.api.operations import Operation, endpoint
from aop_mcp.api.problems import EXCEPTION_HANDLERS
from aop_mcp.api.routes import OPERATIONS
from aop_mcp.api.sse import HEARTBEAT_SECONDS, EventStreams
from aop_mcp.hub import Hub


def create_api(get_hub: Callable[[], Hub], *, heartbeat: float = HEARTBEAT_SECONDS) -> Starlette:
    """The API app; `get_hub` is called on each request (the hub lives in the server's lifespan).

    `heartbeat` is the seconds between keep-alive comments of an event stream. When the
    server begins to shut down it calls `close_event_streams(app)`: uvicorn waits for open
    responses, and an event stream would otherwise keep it waiting for ever.
    """
    app = Starlette(
        routes=[_route(path, ops, get_hub) for path, ops in _by_path(OPERATIONS).items()],
        exception_handlers=EXCEPTION_HANDLERS,
    )
    app.state.openapi = build_document(OPERATIONS)
    app.state.event_streams = EventStreams(heartbeat)
    return app


def close_event_streams(app: Starlette) -> None:
    """End every open event stream of an app made by `create_api`, and refuse new ones."""
    app.state.event_streams.close()


def _by_path(operations: Sequence[Operation]) -> dict[str, list[Operation]]:
    grouped: dict[str, list[Operation]] = {}
    for op in operations:
        grouped.setdefault(op.path, []).append(op)
    return grouped


def _route(path: str, ops: list[Operation], get_hub: Callable[[], Hub]) -> Route:
    """One route per path, so a wrong method's 405 lists every method the path allows."""
    endpoints = {op.method: endpoint(op, get_hub) for op in ops}

    async def dispatch(request: Request) -> Response:
        method = "GET" if request.method == "HEAD" else request.method
        return await endpoints[method](request)

    return Route(path, dispatch, methods=list(endpoints), name=path)
