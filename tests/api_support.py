"""A real uvicorn server on 127.0.0.1 serving the REST API, for the API tests.

The server runs as a task in the test's event loop; its lifespan opens a hub on a SQLite file
like `aop serve` does, and the API is mounted at `/api/v1`.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2
from engine_support import settings_for
from servers import serve_in_loop
from starlette.applications import Starlette
from starlette.routing import Mount

from aop_mcp.api import close_event_streams, create_api
from aop_mcp.hub import Hub, open_hub
from aop_mcp.security.principal import Role

WAIT = 20  # seconds any single wait in a test may take before it fails
PREFIX = "/api/v1"


@dataclass
class ApiServer:
    hub: Hub
    base_url: str
    operator: str  # plaintext tokens
    viewer: str
    agent: str

    def client(self, token: str | None = "operator", **kwargs: Any) -> httpx2.AsyncClient:
        """A client of the API; `token` is a role's name, a literal token, or None."""
        known = {"operator": self.operator, "viewer": self.viewer, "agent": self.agent}
        secret = known.get(token, token) if token is not None else None
        headers = {"Authorization": f"Bearer {secret}"} if secret is not None else {}
        return httpx2.AsyncClient(
            base_url=self.base_url, headers=headers, timeout=WAIT, trust_env=False, **kwargs
        )


def _app(
    tmp_path: Path, holder: dict[str, Hub], api: Starlette, overrides: dict[str, Any]
) -> Starlette:
    settings = settings_for(tmp_path, **overrides)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with open_hub(settings, adopt_orphans=True) as hub:
            holder["hub"] = hub
            yield

    return Starlette(routes=[Mount(PREFIX, app=api)], lifespan=lifespan)


@contextlib.asynccontextmanager
async def serving(
    tmp_path: Path, *, heartbeat: float = 15.0, **overrides: Any
) -> AsyncIterator[ApiServer]:
    """Serve the API on a free port until the block ends; tokens for three roles.

    `overrides` change the hub's Settings (see `engine_support.settings_for`)."""
    holder: dict[str, Hub] = {}
    api = create_api(lambda: holder["hub"], heartbeat=heartbeat)
    # uvicorn waits for open responses as it stops: the event streams end first.
    stop_streams = functools.partial(close_event_streams, api)
    async with serve_in_loop(
        _app(tmp_path, holder, api, overrides), before_shutdown=stop_streams
    ) as server:
        hub = holder["hub"]
        tokens = [(await hub.tokens.create(role, role.value))[1] for role in _ROLES]
        yield ApiServer(hub, f"{server.url}{PREFIX}", *tokens)


_ROLES = (Role.OPERATOR, Role.VIEWER, Role.AGENT)
