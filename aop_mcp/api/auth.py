"""Who may call the REST API: bearer tokens, and the one rule of which role may do what.

Refusals are logged with the method, path, client and reason; never with the token.
"""

from __future__ import annotations

import logging

from starlette.requests import Request

from aop_mcp.api.problems import Forbidden, Unauthorized
from aop_mcp.hub import Hub
from aop_mcp.security import principal as rules
from aop_mcp.security.principal import Access, Principal, Role

log = logging.getLogger("aop_mcp.api.auth")

#: Methods that only read: every role may use them.
READ_METHODS = frozenset({"GET", "HEAD"})
#: Roles that may also change things through this API (define, run, cancel, retry, replay).
WRITE_ROLES = rules.ALLOWED[Access.WRITE]

_CHALLENGE = 'Bearer realm="aop-mcp"'


def access_of(method: str, access: Access | None = None) -> Access:
    """What a call is: the operation's own access, else read for GET/HEAD, write otherwise."""
    if access is not None:
        return access
    return Access.READ if method.upper() in READ_METHODS else Access.WRITE


def may(role: Role, method: str, access: Access | None = None) -> bool:
    """The role rule of `aop_mcp.security.principal`, for a call with this method."""
    return rules.may(role, access_of(method, access))


def bearer_token(request: Request) -> str | None:
    """The token of an `Authorization: Bearer <token>` header, if there is one."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


async def authenticate(request: Request, hub: Hub) -> Principal:
    """The caller, from its bearer token; raises Unauthorized (401) without a valid one."""
    token = bearer_token(request)
    if token is None:
        _refuse(request, "no bearer token")
        raise Unauthorized(
            "this route needs an `Authorization: Bearer <token>` header",
            headers={"WWW-Authenticate": _CHALLENGE},
        )
    principal = await hub.tokens.verify(token)
    if principal is None:
        _refuse(request, "unknown or revoked token")
        raise Unauthorized(
            "the bearer token is unknown or revoked; ask an admin for a token",
            headers={"WWW-Authenticate": f'{_CHALLENGE}, error="invalid_token"'},
        )
    return principal


def authorize(request: Request, principal: Principal, access: Access | None = None) -> None:
    """Raises Forbidden (403) unless the principal's role may make this call."""
    if may(principal.role, request.method, access):
        return
    _refuse(request, f"role {principal.role} of {principal.name!r} may not do this")
    needed = rules.allowed_roles(access_of(request.method, access))
    raise Forbidden(
        f"the {principal.role} role may not do this; "
        f"{request.method} {request.url.path} needs a token with role {needed}"
    )


def _refuse(request: Request, reason: str) -> None:
    client = request.client.host if request.client else "unknown client"
    log.warning("refused %s %s from %s: %s", request.method, request.url.path, client, reason)


def authorize_agent(request: Request, principal: Principal | None, agent: str) -> None:
    """Raises Forbidden (403) unless the caller may report for `agent` (see `acts_for`)."""
    if principal is None or rules.acts_for(principal, agent):
        return
    _refuse(request, f"agent token {principal.name!r} used for agent {agent!r}")
    raise Forbidden(
        f"this token belongs to agent {principal.name!r}; it cannot report for agent "
        f"{agent!r} (give each agent its own token: aop token create --role agent --name "
        f"{agent})"
    )
