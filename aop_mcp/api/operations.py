"""An operation of the REST API: one route, described once for serving and for the docs.

`Operation` holds the method, path, handler and what the OpenAPI document says about it.
`endpoint` turns it into a Starlette endpoint that authenticates, authorizes, reads the query
and body, and hands a `Call` to the handler. Handlers are thin: one service call, one view.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from aop_mcp.api import auth
from aop_mcp.api.requests import read_document, read_model, read_query
from aop_mcp.hub import Hub
from aop_mcp.security.principal import Access, Principal

BodyKind = Literal["json", "document"]


@dataclass(frozen=True, slots=True)
class Body:
    """A request body: a JSON object fitting `model`, or a workflow document (JSON or YAML)."""

    model: type[BaseModel]
    kind: BodyKind = "json"
    required: bool = False


@dataclass(frozen=True, slots=True)
class Reply:
    """A documented response: its status, what it means, and its model (None: no JSON)."""

    status: int
    description: str
    model: type[BaseModel] | None = None
    media_type: str = "application/json"


@dataclass(frozen=True, slots=True)
class Call:
    """What a handler gets: the request, the hub, the caller, the parsed query and body."""

    request: Request
    hub: Hub
    principal: Principal | None
    query: Any = None
    body: Any = None

    def param(self, name: str) -> str:
        """A path parameter."""
        return str(self.request.path_params[name])


Handler = Callable[[Call], Awaitable[Response]]


@dataclass(frozen=True, slots=True)
class Operation:
    method: str
    path: str
    handler: Handler
    operation_id: str
    summary: str
    tag: str
    replies: tuple[Reply, ...]
    query: type[BaseModel] | None = None
    body: Body | None = None
    errors: tuple[int, ...] = ()  # statuses beyond those every operation may answer
    public: bool = False
    headers: Mapping[str, str] = field(default_factory=dict)  # request headers it reads
    access: Access | None = None  # who may call it (auth's rule); None: read or write by method

    @property
    def writes(self) -> bool:
        return self.method.upper() not in auth.READ_METHODS


def reply(
    model: BaseModel, status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    """A JSON response of a response model."""
    return JSONResponse(model.model_dump(mode="json"), status_code=status, headers=headers)


def endpoint(op: Operation, get_hub: Callable[[], Hub]) -> Callable[[Request], Awaitable[Response]]:
    """The Starlette endpoint serving `op`."""

    async def serve(request: Request) -> Response:
        hub = get_hub()
        principal = None
        if not op.public:
            principal = await auth.authenticate(request, hub)
            auth.authorize(request, principal, op.access)
        query = read_query(request, op.query) if op.query else _no_query(request)
        body = await _read_body(request, op.body) if op.body else None
        return await op.handler(Call(request, hub, principal, query, body))

    serve.__name__ = op.operation_id
    return serve


def _no_query(request: Request) -> None:
    if request.query_params:
        read_query(request, _Nothing)


class _Nothing(BaseModel):
    """The query of an operation that takes no parameters."""


async def _read_body(request: Request, body: Body) -> Any:
    if body.kind == "document":
        return await read_document(request)
    return await read_model(request, body.model)
