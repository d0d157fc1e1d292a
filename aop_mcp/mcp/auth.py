"""Who calls the MCP door: bearer tokens over HTTP, the trusted parent over stdio.

`HubTokenVerifier` adapts `hub.tokens.verify` to the SDK's `TokenVerifier`: the principal's
role travels in the AccessToken's scopes and claims. `RefusalLog` logs every 401 of the MCP
endpoint (the SDK refuses silently); the token itself is never logged.
"""

from __future__ import annotations

import logging

from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.auth.provider import AccessToken
from mcp.server.auth.settings import AuthSettings
from mcp.server.mcpserver.exceptions import ToolError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from aop_mcp.errors import AopError
from aop_mcp.mcp.holder import HubHolder
from aop_mcp.security import principal as rules
from aop_mcp.security.principal import LOCAL, Access, Principal, Role

log = logging.getLogger("aop_mcp.mcp.auth")

#: Roles that may change things through MCP (define, start, cancel, retry, replay), as in REST.
WRITE_ROLES = rules.ALLOWED[Access.WRITE]


def bearer_auth(server_url: str) -> AuthSettings:
    """The SDK's auth settings for bearer tokens this server issues itself (no OAuth flow)."""
    # issuer_url is required by the SDK; tokens come from `aop token create` or the first
    # start, so the issuer is this server. No resource metadata: there is no OAuth to find.
    return AuthSettings(issuer_url=server_url, resource_server_url=None)


class HubTokenVerifier:
    """The SDK's TokenVerifier over the hub's TokenService."""

    def __init__(self, hubs: HubHolder) -> None:
        self._hubs = hubs

    async def verify_token(self, token: str) -> AccessToken | None:
        """An AccessToken carrying the principal, or None (the SDK answers 401)."""
        try:
            principal = await self._hubs.get_hub().tokens.verify(token)
        except AopError as err:  # the hub is not open (yet or any more): refuse, say why
            log.warning("MCP token check failed: %s", err)
            return None
        if principal is None:
            return None
        return AccessToken(
            token=token,
            client_id=principal.token_id,
            scopes=[str(principal.role)],
            subject=principal.name,
            claims={"role": str(principal.role), "name": principal.name},
        )


def current_principal() -> Principal:
    """The caller of the current MCP request.

    Over HTTP every request carries a verified token (the endpoint refuses others); a
    request without one comes over stdio or in-process, from a trusted parent: LOCAL.
    """
    token = get_access_token()
    if token is None:
        return LOCAL
    claims = token.claims or {}
    return Principal(
        token_id=token.client_id,
        name=str(claims.get("name", token.subject or "")),
        role=Role(claims.get("role", token.scopes[0] if token.scopes else Role.VIEWER)),
    )


def require_writer(action: str) -> Principal:
    """The caller, if its role may change things; else a tool error naming the role."""
    return require(Access.WRITE, action)


def require(access: Access, action: str) -> Principal:
    """The caller, if its role may make a call of this access; else a tool error naming it."""
    principal = current_principal()
    if not rules.may(principal.role, access):
        may_only = ", which may only read" if principal.role is Role.VIEWER else ""
        raise ToolError(
            f"your token's role is {principal.role}{may_only}; to {action} use a token with "
            f"role {rules.allowed_roles(access)}"
        )
    return principal


def require_agent(agent: str, action: str) -> Principal:
    """The caller, if it may report for `agent` (an agent token only for its own agent)."""
    principal = require(Access.HEARTBEAT, action)
    if not rules.acts_for(principal, agent):
        raise ToolError(
            f"this token belongs to agent {principal.name!r}, so it cannot {action} for agent "
            f"{agent!r}; give each agent its own token: aop token create --role agent "
            f"--name {agent}"
        )
    return principal


class RefusalLog:
    """ASGI wrapper: logs each 401/403 of the wrapped app with method, path and client."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def observe(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] in (401, 403):
                _log_refusal(scope, message["status"])
            await send(message)

        await self.app(scope, receive, observe)


def _log_refusal(scope: Scope, status: int) -> None:
    headers = dict(scope.get("headers") or [])
    authorization = headers.get(b"authorization", b"")
    if status == 403:
        reason = "token lacks a required scope"
    elif not authorization.lower().startswith(b"bearer "):
        reason = "no bearer token"
    else:
        reason = "unknown or revoked token"
    client = scope.get("client") or ("?", 0)
    log.warning(
        "refused MCP request %s %s from %s:%s (%d: %s)",
        scope.get("method"),
        scope.get("path"),
        client[0],
        client[1],
        status,
        reason,
    )
