"""`aop serve`: the HTTP server. `/healthz`, MCP (streamable HTTP) at `/mcp`, REST at
`/api/v1`, and the dashboard at `/`.

The app's lifespan opens the hub with `adopt_orphans=True`, so the server resumes every run
a crashed process left behind, and stops the engine on the way out (running attempts are
recorded as interrupted and resume at the next start). It also makes sure the server can be
reached (`hub.tokens.bootstrap`: the first admin token is printed once) and runs the MCP
session manager, since the lifespan of a mounted app never runs.

`/mcp` needs `Authorization: Bearer <token>`; a missing or wrong token gets 401 (logged,
without the token). Host-header checks against DNS rebinding stay on for a loopback host.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import socket
import sys
from collections.abc import AsyncIterator, Iterator
from importlib.metadata import PackageNotFoundError, version
from types import FrameType

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route

from aop_mcp.api import close_event_streams, create_api
from aop_mcp.config import Settings
from aop_mcp.errors import AopError
from aop_mcp.hub import Hub, open_hub
from aop_mcp.mcp.auth import RefusalLog, bearer_auth
from aop_mcp.mcp.http import transport_security
from aop_mcp.mcp.server import create_mcp
from aop_mcp.streams import EventStreams
from aop_mcp.web import dashboard_routes

#: Where the REST API is mounted.
API_PREFIX = "/api/v1"
MCP_PATH = "/mcp"


def database_label(settings: Settings) -> str:
    """The database as a person would name it."""
    return str(settings.db) if settings.db is not None else ":memory:"


def _package_version() -> str:
    try:
        return version("aop-mcp")
    except PackageNotFoundError:
        return "unknown"


async def healthz(request: Request) -> JSONResponse:
    """`GET /healthz`: the server is up, and how many runs its engine drives."""
    hub: Hub = request.app.state.hub
    active = await hub.store.active_runs()
    return JSONResponse(
        {
            "status": "ok",
            "version": _package_version(),
            "database": database_label(hub.settings),
            "runs_driven": sum(hub.engine.drives(run.id) for run, _lease in active),
        }
    )


def base_url(host: str, port: int) -> str:
    """The server's URL as a client writes it (IPv6 hosts in brackets)."""
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def announce_token(host: str, port: int, token: str) -> None:
    """Print the first admin token once, with where to use it (stderr, never a log file)."""
    url = base_url(host, port)
    print(
        f"Dashboard: {url}/\nMCP: {url}{MCP_PATH}\nREST: {url}{API_PREFIX}\n"
        f"token: {token}\n(the first admin token: shown once, keep it somewhere safe)",
        file=sys.stderr,
        flush=True,
    )


def create_app(settings: Settings) -> Starlette:
    """The ASGI app; its lifespan holds the hub (on `app.state.hub`)."""
    door = create_mcp(auth=bearer_auth(base_url(settings.host, settings.port)))
    mcp_app = door.server.streamable_http_app(
        streamable_http_path=MCP_PATH,
        transport_security=transport_security(settings.host, settings.port),
        host=settings.host,
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            async with open_hub(settings, adopt_orphans=True) as hub:
                app.state.hub = hub
                _log_sandbox(hub)
                await _bootstrap_token(app, hub, settings)
                async with door.attached(hub), door.server.session_manager.run():
                    yield
        except AopError as err:
            app.state.hub_error = err  # `serve` reports it as one line, not a traceback
            raise

    api = create_api(door.get_hub)
    live_pages = EventStreams()
    routes = [
        Route("/healthz", healthz),
        Mount(API_PREFIX, app=api),
        *dashboard_routes(door.get_hub, live_pages),
        Mount("/", app=RefusalLog(mcp_app)),  # last: /mcp, and 404 for anything else
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.hub_error = None
    app.state.first_token = None
    app.state.mcp = door
    app.state.api = api
    app.state.live_pages = live_pages
    return app


def close_streams(app: Starlette) -> None:
    """End the open event streams of an app made by `create_app` (REST's and the dashboard's
    live pages): uvicorn waits for every open response before it stops."""
    close_event_streams(app.state.api)
    app.state.live_pages.close()


def _log_sandbox(hub: Hub) -> None:
    """One line at start: whether local tasks are sandboxed and, if not, why and how."""
    level = logging.INFO if hub.sandbox.sandboxed and hub.sandbox.usable else logging.WARNING
    logging.getLogger("uvicorn.error").log(level, hub.sandbox.describe())


async def _bootstrap_token(app: Starlette, hub: Hub, settings: Settings) -> None:
    token = await hub.tokens.bootstrap(settings.token)
    if token is None:
        return
    if settings.port:
        announce_token(settings.host, settings.port, token)
    else:  # port 0: only the server knows the real port once it listens (`_Server`)
        app.state.first_token = token


class _Server(uvicorn.Server):
    """uvicorn's server, announcing itself once it listens (and with the real port)."""

    def __init__(self, config: uvicorn.Config, database: str) -> None:
        super().__init__(config)
        self.database = database

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        """Start, then print the one line that says where the server listens."""
        await super().startup(sockets)
        if self.should_exit:
            return
        host, port = self.config.host, self.config.port
        for server in self.servers:
            for sock in server.sockets:
                port = sock.getsockname()[1]  # differs from the configured one with port 0
        print(
            f"aop-mcp serving on http://{host}:{port} (database: {self.database})",
            file=sys.stderr,
            flush=True,
        )
        app = self.config.app
        if isinstance(app, Starlette) and app.state.first_token is not None:
            announce_token(host, port, app.state.first_token)
            app.state.first_token = None

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        """End open event streams first: uvicorn waits for every open response to finish."""
        app = self.config.app
        if isinstance(app, Starlette):
            close_streams(app)
        await super().shutdown(sockets)


class _Stop(Exception):
    """uvicorn re-raises the signal that stopped it; this turns that into a clean exit."""


def _raise_stop(signum: int, frame: FrameType | None) -> None:
    raise _Stop(signum)


@contextlib.contextmanager
def _clean_exit_on_signals() -> Iterator[None]:
    previous = {sig: signal.signal(sig, _raise_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    except _Stop:
        pass  # a graceful shutdown that someone asked for is a success
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


class _HideHubTraceback(logging.Filter):
    """Drops uvicorn's traceback of a hub that failed to open: `serve` says it in one line."""

    def __init__(self, app: Starlette) -> None:
        super().__init__()
        self._app = app

    def filter(self, record: logging.LogRecord) -> bool:
        return self._app.state.hub_error is None


def serve(settings: Settings) -> None:
    """Serve until SIGINT or SIGTERM (a clean exit); raises the hub's AopError, if any."""
    app = create_app(settings)
    config = uvicorn.Config(app, host=settings.host, port=settings.port, log_level="info")
    hide = _HideHubTraceback(app)
    logger = logging.getLogger("uvicorn.error")
    logger.addFilter(hide)
    try:
        with _clean_exit_on_signals():
            _Server(config, database_label(settings)).run()
    except SystemExit:
        if app.state.hub_error is None:
            raise
    finally:
        logger.removeFilter(hide)
    if app.state.hub_error is not None:
        raise app.state.hub_error
