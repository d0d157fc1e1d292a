"""Reading a request: its body (JSON, or a workflow as YAML/JSON text) and its query.

Malformed input is a 400; well-formed JSON that does not fit the request model is a 422 whose
`errors` name each field. Both are raised as the door's errors of `problems.py`.
"""

from __future__ import annotations

import json
import types
from typing import Any, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError
from starlette.requests import Request

from aop_mcp.api.problems import (
    BadRequest,
    ContentTooLarge,
    InvalidRequest,
    UnsupportedMediaType,
)
from aop_mcp.errors import Problem

MAX_BODY_BYTES = 1_048_576  # no workflow or start request comes near it

#: Media types a workflow document may be sent as, besides JSON.
TEXT_TYPES = frozenset({"application/yaml", "application/x-yaml", "text/yaml", "text/plain"})


def media_type(request: Request) -> str:
    """The request's media type without parameters, lower case; JSON when absent."""
    raw = request.headers.get("content-type", "application/json")
    return raw.partition(";")[0].strip().lower() or "application/json"


def is_json(kind: str) -> bool:
    return kind == "application/json" or kind.endswith("+json")


async def read_body(request: Request) -> bytes:
    """The body, refused with 413 beyond MAX_BODY_BYTES without reading all of it."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise _too_large()
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            raise _too_large()
    return bytes(body)


def _too_large() -> ContentTooLarge:
    return ContentTooLarge(f"the body is larger than {MAX_BODY_BYTES} bytes")


def decode_json(body: bytes) -> Any:
    """The JSON value of a body; raises BadRequest naming where it breaks."""
    try:
        return json.loads(body)
    except json.JSONDecodeError as exc:
        raise BadRequest(
            f"the body is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}"
        ) from exc
    except UnicodeDecodeError as exc:
        raise BadRequest(f"the body is not UTF-8 text: {exc}") from exc


async def read_model[M: BaseModel](request: Request, model: type[M]) -> M:
    """A JSON body as `model`; an empty body counts as `{}`."""
    kind = media_type(request)
    if not is_json(kind):
        raise UnsupportedMediaType(f"send the body as application/json, not {kind}")
    body = await read_body(request)
    raw = decode_json(body) if body.strip() else {}
    if not isinstance(raw, dict):
        raise InvalidRequest(
            f"the body must be a JSON object, not {type(raw).__name__}",
            [Problem("body", "expected a JSON object")],
        )
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise InvalidRequest("the body does not fit the request", _problems(exc)) from exc


async def read_document(request: Request) -> str | dict[str, Any]:
    """A workflow document: a JSON object, or YAML/JSON text for the service to parse.

    JSON that cannot be parsed is a 400; YAML is parsed by the service, whose syntax errors
    name the line (422, as every other fault of a document).
    """
    kind = media_type(request)
    body = await read_body(request)
    if is_json(kind):
        raw = decode_json(body)
        # A JSON array or scalar is read as text so the service explains what it holds.
        return raw if isinstance(raw, dict) else body.decode()
    if kind in TEXT_TYPES:
        try:
            return body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise BadRequest(f"the body is not UTF-8 text: {exc}") from exc
    raise UnsupportedMediaType(
        f"send the workflow as application/json, application/yaml or text/plain, not {kind}"
    )


def read_query[M: BaseModel](request: Request, model: type[M]) -> M:
    """The query string as `model`; list fields take repeated or comma-separated values."""
    params = request.query_params
    raw: dict[str, Any] = {}
    for name, info in model.model_fields.items():
        if name not in params:
            continue
        if _is_list(info.annotation):
            raw[name] = [part for value in params.getlist(name) for part in value.split(",")]
        else:
            raw[name] = params[name]
    unknown = sorted(set(params) - set(model.model_fields))
    if unknown:
        known = ", ".join(model.model_fields) or "none"
        raise BadRequest(f"unknown query parameter {unknown[0]!r}; known: {known}")
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise BadRequest("a query parameter is invalid", _problems(exc)) from exc


def _is_list(annotation: Any) -> bool:
    if get_origin(annotation) is list:
        return True
    if get_origin(annotation) in (Union, types.UnionType):
        return any(_is_list(arg) for arg in get_args(annotation))
    return False


def _problems(exc: ValidationError) -> list[Problem]:
    return [
        Problem(".".join(str(part) for part in error["loc"]) or "body", error["msg"])
        for error in exc.errors(include_url=False)
    ]
