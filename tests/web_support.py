"""The whole server app (`aop serve`'s) on a real uvicorn at 127.0.0.1, for dashboard tests.

`Dashboard.browser(role)` signs in through the real sign-in form and returns a client that
carries the session cookie and knows the page's CSRF value. The cookie is Secure, and
Python's cookie jar never sends a Secure cookie over plain HTTP (browsers do, to loopback),
so the client sends it as a header itself.
"""

from __future__ import annotations

import contextlib
import functools
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2
from engine_support import settings_for
from servers import serve_in_loop

from aop_mcp.hub import Hub
from aop_mcp.security.principal import Role
from aop_mcp.server import close_streams, create_app

WAIT = 20
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@dataclass
class Browser:
    """A signed-in client: its session cookie and CSRF value."""

    client: httpx2.AsyncClient
    csrf: str

    async def get(self, path: str, **kwargs: Any) -> httpx2.Response:
        return await self.client.get(path, **kwargs)

    async def post(
        self, path: str, data: dict[str, str] | None = None, *, csrf: bool = True, **kwargs: Any
    ) -> httpx2.Response:
        """A form POST, with the CSRF field unless `csrf` is False."""
        form = {**({"csrf": self.csrf} if csrf else {}), **(data or {})}
        return await self.client.post(path, data=form, **kwargs)


@dataclass
class Dashboard:
    hub: Hub
    url: str
    tokens: dict[Role, str]
    stack: contextlib.AsyncExitStack

    def anonymous(self, **kwargs: Any) -> httpx2.AsyncClient:
        """A client with no session; redirects are not followed."""
        return httpx2.AsyncClient(base_url=self.url, timeout=WAIT, trust_env=False, **kwargs)

    async def browser(self, role: Role = Role.OPERATOR) -> Browser:
        """Sign in with the role's token through the form, as a person would."""
        client = await self.stack.enter_async_context(self.anonymous())
        form = await client.get("/signin")
        nonce = _CSRF.search(form.text)
        assert nonce, form.text
        signin = await client.post(
            "/signin",
            data={"csrf": nonce[1], "token": self.tokens[role], "next": "/"},
            headers={"Cookie": f"aop_signin={form.cookies['aop_signin']}"},
        )
        assert signin.status_code == 303, signin.text
        session = signin.cookies["aop_session"]
        client.headers["Cookie"] = f"aop_session={session}"
        page = await client.get("/")
        assert page.status_code == 200, page.text
        found = _CSRF.search(page.text)
        assert found, page.text
        return Browser(client, found[1])


@contextlib.asynccontextmanager
async def dashboard(tmp_path: Path, **overrides: Any) -> AsyncIterator[Dashboard]:
    """`aop serve`'s app on a free port, with a token of each role."""
    settings = settings_for(tmp_path, host="127.0.0.1", port=0, **overrides)
    app = create_app(settings)
    async with (
        serve_in_loop(app, before_shutdown=functools.partial(close_streams, app)) as server,
        contextlib.AsyncExitStack() as stack,
    ):
        hub: Hub = app.state.hub
        tokens = {}
        for role in Role:
            tokens[role] = (await hub.tokens.create(role, f"{role.value}-user"))[1]
        yield Dashboard(hub, server.url, tokens, stack)
