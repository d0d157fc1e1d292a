"""Who is at the dashboard, and whether they may do what they ask.

A browser signs in with a token and gets a session cookie (`aop_mcp.security.sessions`):
HTTP-only, SameSite=Strict, Secure wherever the browser will keep a Secure cookie (HTTPS, or
a loopback host). Every request verifies the sealed token again, so a revoked token signs the
browser out at once. Every state-changing request must carry the session's CSRF value (a
form field or the `X-CSRF-Token` header htmx sends) and, when the browser says where it comes
from, an `Origin` of this server. Errors of any page become one HTML page, here.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from aop_mcp.errors import AopError
from aop_mcp.hub import Hub
from aop_mcp.security import principal as rules
from aop_mcp.security.principal import Access, Principal
from aop_mcp.security.secrets import settings_key
from aop_mcp.security.sessions import Session, SessionSealer
from aop_mcp.web.render import render

log = logging.getLogger("aop_mcp.web")

SESSION_COOKIE = "aop_session"
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf"

GetHub = Callable[[], Hub]


@dataclass(frozen=True, slots=True)
class WebContext:
    """What a page handler gets: the hub, who is signed in, and their session."""

    hub: Hub
    principal: Principal
    session: Session

    def may(self, access: Access) -> bool:
        """Whether the signed-in role may do this (pages hide buttons it may not use)."""
        return rules.may(self.principal.role, access)

    def page(self, **values: Any) -> dict[str, Any]:
        """The template context every page shares, plus `values`."""
        return {
            "principal": self.principal,
            "csrf": self.session.csrf,
            "can_write": self.may(Access.WRITE),
            **values,
        }


Handler = Callable[[Request, WebContext], Awaitable[Response]]


class WebRefusal(AopError):
    """A request the dashboard refuses before any service sees it (CSRF, role)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def sealer(request: Request, hub: Hub) -> SessionSealer:
    """The app's session sealer, made once from the hub's secret key."""
    state = request.app.state
    found: SessionSealer | None = getattr(state, "session_sealer", None)
    if found is None:
        key = settings_key(hub.settings)
        found = SessionSealer(key() if callable(key) else key)
        state.session_sealer = found
    return found


def secure_cookies(request: Request) -> bool:
    """Whether the browser will keep a Secure cookie: HTTPS, or plain HTTP on loopback."""
    if request.url.scheme == "https":
        return True
    host = (request.url.hostname or "").strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def set_cookie(
    response: Response, request: Request, name: str, value: str, *, max_age: int, path: str
) -> None:
    """A dashboard cookie: HTTP-only, SameSite=Strict, Secure where the browser keeps it."""
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path=path,
        httponly=True,
        samesite="strict",
        secure=secure_cookies(request),
    )


def clear_cookie(response: Response, request: Request, name: str, *, path: str) -> None:
    """Remove a cookie `set_cookie` set."""
    response.delete_cookie(
        name, path=path, httponly=True, samesite="strict", secure=secure_cookies(request)
    )


def go_to(request: Request, target: str) -> Response:
    """After a form's action: htmx follows `HX-Redirect`, a plain form a 303 redirect."""
    if request.headers.get("hx-request"):
        return Response(status_code=204, headers={"HX-Redirect": target})
    return RedirectResponse(target, status_code=303)


def same_origin(request: Request) -> bool:
    """False when the browser says the request comes from another site.

    Browsers send `Origin` on every POST; a missing one (old clients, curl) falls back to the
    CSRF value alone.
    """
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return origin is None
    parts = urlsplit(origin)
    return (parts.scheme, parts.netloc) == (request.url.scheme, request.url.netloc)


def signin_redirect(request: Request) -> Response:
    """To the sign-in page, coming back here after; htmx requests get `HX-Redirect`."""
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    location = f"/signin?next={quote(target, safe='')}"
    if request.headers.get("hx-request"):
        return Response(status_code=401, headers={"HX-Redirect": location})
    return RedirectResponse(location, status_code=303)


async def signed_in(request: Request, hub: Hub) -> tuple[Principal, Session] | None:
    """The principal of the session cookie, if it holds a token that is still valid."""
    session = sealer(request, hub).open(request.cookies.get(SESSION_COOKIE))
    if session is None:
        return None
    principal = await hub.tokens.verify(session.token)
    return None if principal is None else (principal, session)


async def check_csrf(request: Request, session: Session) -> None:
    """Raises WebRefusal (403) unless the request carries the session's CSRF value."""
    if not same_origin(request):
        raise WebRefusal(403, "this request came from another site; it was refused (CSRF)")
    presented = request.headers.get(CSRF_HEADER)
    if presented is None:
        form = await request.form()
        value = form.get(CSRF_FIELD)
        presented = value if isinstance(value, str) else None
    if not session.csrf_matches(presented):
        raise WebRefusal(
            403, "the form's CSRF value is missing or stale; reload the page and try again"
        )


def dashboard(
    get_hub: GetHub, handler: Handler, access: Access = Access.READ
) -> Callable[[Request], Awaitable[Response]]:
    """A Starlette endpoint around `handler`: signed in, CSRF-checked, authorised.

    Writes (any method but GET/HEAD) need the CSRF value; `access` is what the role must
    allow. AopErrors become the error page with their status.
    """

    async def endpoint(request: Request) -> Response:
        hub = get_hub()
        found = await signed_in(request, hub)
        if found is None:
            return signin_redirect(request)
        principal, session = found
        context = WebContext(hub, principal, session)
        try:
            if request.method not in ("GET", "HEAD"):
                await check_csrf(request, session)
            if not context.may(access):
                needed = rules.allowed_roles(access)
                raise WebRefusal(
                    403, f"the {principal.role} role may not do this; it needs {needed}"
                )
            return await handler(request, context)
        except AopError as err:
            return error_page(request, context, err)

    endpoint.__name__ = handler.__name__
    endpoint.__doc__ = handler.__doc__
    return endpoint


def error_page(request: Request, context: WebContext | None, err: AopError) -> Response:
    """An error as an HTML page (or fragment, for htmx) with the error's status."""
    status = getattr(err, "status", 500) or 500
    if status >= 500:
        log.error("dashboard error on %s %s", request.method, request.url.path, exc_info=err)
    else:
        log.info("dashboard refused %s %s: %s", request.method, request.url.path, err)
    values = {"status": status, "message": str(err)}
    page = context.page(**values) if context else {"principal": None, "csrf": "", **values}
    name = "_error.html" if request.headers.get("hx-request") else "error.html"
    return render(name, page, status_code=status)
