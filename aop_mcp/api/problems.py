"""Every error of the REST API as an RFC 9457 `application/problem+json` response.

This is the one place that maps errors to HTTP: the AopError tree (each error carries its
status), the door's own request errors defined here, Starlette's HTTP exceptions (unknown
routes, wrong methods) and anything unexpected (500, logged).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from http import HTTPStatus

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse

from aop_mcp.api.schemas import ProblemItem, ProblemView
from aop_mcp.errors import AopError, Problem

PROBLEM_JSON = "application/problem+json"
_TYPE_PREFIX = "urn:aop-mcp:problem:"

log = logging.getLogger("aop_mcp.api")


class ApiError(AopError):
    """A request the door refuses before any service sees it."""

    usage = True

    def __init__(
        self,
        message: str,
        problems: Sequence[Problem] = (),
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.problems = list(problems)
        self.headers = dict(headers or {})


class BadRequest(ApiError):
    """The body or a query parameter cannot be read (malformed JSON, a wrong type)."""

    status = 400


class Unauthorized(ApiError):
    """No bearer token, or one that is unknown or revoked."""

    status = 401


class Forbidden(ApiError):
    """The caller's role may not do this."""

    status = 403


class ContentTooLarge(ApiError):
    status = 413


class UnsupportedMediaType(ApiError):
    status = 415


class InvalidRequest(ApiError):
    """The body is well-formed but does not fit the operation's request model."""

    status = 422


def problem_type(error: AopError) -> str:
    """A stable URI naming the kind of error: `urn:aop-mcp:problem:run-not-found`."""
    return _TYPE_PREFIX + _words(type(error).__name__, "-").lower()


def _words(class_name: str, sep: str) -> str:
    return sep.join(re.findall(r"[A-Z][a-z0-9]*", class_name))


def _title(error: AopError) -> str:
    return _words(type(error).__name__, " ").capitalize()


def _items(error: AopError) -> list[ProblemItem] | None:
    problems: list[Problem] | None = getattr(error, "problems", None)
    if not problems:
        return None
    return [ProblemItem(task=p.task, field=p.field, message=p.message) for p in problems]


def problem_response(
    status: int,
    *,
    type_: str,
    title: str,
    detail: str,
    errors: list[ProblemItem] | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    """A problem+json response; `errors` is left out when there are none."""
    body = ProblemView(type=type_, title=title, status=status, detail=detail, errors=errors)
    # Only a missing `errors` list is left out: an item's `task` stays, null or not.
    return JSONResponse(
        body.model_dump(mode="json", exclude={"errors"} if errors is None else None),
        status_code=status,
        headers=headers,
        media_type=PROBLEM_JSON,
    )


def from_aop_error(request: Request, exc: Exception) -> JSONResponse:
    """Exception handler for the AopError tree (the door's own errors included)."""
    assert isinstance(exc, AopError)
    status = exc.status if exc.status >= 400 else 500
    return problem_response(
        status,
        type_=problem_type(exc),
        title=_title(exc),
        detail=exc.message,
        errors=_items(exc),
        headers=getattr(exc, "headers", None),
    )


def from_http_exception(request: Request, exc: Exception) -> JSONResponse:
    """Exception handler for Starlette's HTTP errors: unknown routes, wrong methods."""
    assert isinstance(exc, HTTPException)
    phrase = HTTPStatus(exc.status_code).phrase
    detail = exc.detail if exc.detail != phrase else _http_detail(request, exc.status_code)
    return problem_response(
        exc.status_code, type_="about:blank", title=phrase, detail=detail, headers=exc.headers
    )


def _http_detail(request: Request, status: int) -> str:
    if status == 404:
        return f"no route {request.url.path}; GET the OpenAPI document (/openapi.json) for routes"
    if status == 405:
        return f"{request.method} is not allowed on {request.url.path}"
    return HTTPStatus(status).description


def from_unexpected(request: Request, exc: Exception) -> JSONResponse:
    """Exception handler of last resort: a 500 whose detail gives nothing away."""
    log.exception("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
    return problem_response(
        500,
        type_="about:blank",
        title="Internal Server Error",
        detail="the server failed to answer; the error is in its log",
    )


EXCEPTION_HANDLERS = {
    AopError: from_aop_error,
    HTTPException: from_http_exception,
    Exception: from_unexpected,
}
