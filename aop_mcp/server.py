"""`aop serve`: the HTTP server. For now only a health check; MCP and REST come next.

The app's lifespan opens the hub with `adopt_orphans=True`, so the server resumes every run
a crashed process left behind, and stops the engine on the way out (running attempts are
recorded as interrupted and resume at the next start).
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
from starlette.routing import Route

from aop_mcp.config import Settings
from aop_mcp.errors import AopError
from aop_mcp.hub import Hub, open_hub


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


def create_app(settings: Settings) -> Starlette:
    """The ASGI app; its lifespan holds the hub (on `app.state.hub`)."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            async with open_hub(settings, adopt_orphans=True) as hub:
                app.state.hub = hub
                yield
        except AopError as err:
            app.state.hub_error = err  # `serve` reports it as one line, not a traceback
            raise

    app = Starlette(routes=[Route("/healthz", healthz)], lifespan=lifespan)
    app.state.hub_error = None
    return app


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
