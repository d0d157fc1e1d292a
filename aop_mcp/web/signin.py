"""Signing in with a token, and out again.

Sign-in has its own CSRF guard, since there is no session yet: the form carries a random
value that must match a short-lived HTTP-only cookie (double submit), so another site cannot
sign a browser in with the attacker's token.
"""

from __future__ import annotations

import secrets
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from aop_mcp.errors import AopError
from aop_mcp.web.auth import (
    CSRF_FIELD,
    SESSION_COOKIE,
    GetHub,
    check_csrf,
    clear_cookie,
    error_page,
    same_origin,
    sealer,
    secure_cookies,
    set_cookie,
    signed_in,
)
from aop_mcp.web.render import render

SIGNIN_COOKIE = "aop_signin"
_SIGNIN_SECONDS = 600


def safe_next(target: str | None) -> str:
    """Where to go after signing in: a path on this server, never another site."""
    if not target:
        return "/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return "/"
    return target


def _form(request: Request, *, error: str = "", status_code: int = 200) -> Response:
    nonce = secrets.token_urlsafe(18)
    response = render(
        "signin.html",
        {
            "principal": None,
            "csrf": nonce,
            "next": safe_next(request.query_params.get("next")),
            "error": error,
            "insecure": not secure_cookies(request),
        },
        status_code=status_code,
    )
    set_cookie(response, request, SIGNIN_COOKIE, nonce, max_age=_SIGNIN_SECONDS, path="/signin")
    return response


def signin_routes(get_hub: GetHub) -> dict[str, object]:
    """The endpoints of `/signin` (GET, POST) and `/signout` (POST)."""

    async def show_signin(request: Request) -> Response:
        """The sign-in form; a browser already signed in goes on to the dashboard."""
        if await signed_in(request, get_hub()) is not None:
            return RedirectResponse(safe_next(request.query_params.get("next")), 303)
        return _form(request)

    async def submit_signin(request: Request) -> Response:
        """Check the token; on success set the session cookie and go on."""
        hub = get_hub()
        form = await request.form()
        nonce = request.cookies.get(SIGNIN_COOKIE, "")
        presented = form.get(CSRF_FIELD)
        if (
            not same_origin(request)
            or not nonce
            or not isinstance(presented, str)
            or not secrets.compare_digest(nonce.encode(), presented.encode())
        ):
            return _form(request, error="The form expired; sign in again.", status_code=403)
        token = form.get("token")
        token = token.strip() if isinstance(token, str) else ""
        if not token:
            return _form(request, error="Paste a token to sign in.", status_code=422)
        if await hub.tokens.verify(token) is None:
            return _form(request, error="That token is unknown or revoked.", status_code=401)
        value, _session = sealer(request, hub).new(token)
        target = form.get("next")
        response = RedirectResponse(safe_next(target if isinstance(target, str) else None), 303)
        set_cookie(
            response, request, SESSION_COOKIE, value, max_age=sealer(request, hub).max_age, path="/"
        )
        clear_cookie(response, request, SIGNIN_COOKIE, path="/signin")
        return response

    async def signout(request: Request) -> Response:
        """Clear the session cookie (a CSRF-checked POST, so no other site can sign you out)."""
        found = await signed_in(request, get_hub())
        if found is not None:
            try:
                await check_csrf(request, found[1])
            except AopError as err:
                return error_page(request, None, err)
        response = RedirectResponse("/signin", 303)
        clear_cookie(response, request, SESSION_COOKIE, path="/")
        return response

    return {"show": show_signin, "submit": submit_signin, "signout": signout}
