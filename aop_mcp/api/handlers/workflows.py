"""Handlers of `/workflows`: list, define, read and validate workflow documents."""

from __future__ import annotations

from starlette.responses import Response

from aop_mcp.api import views
from aop_mcp.api.operations import Call, reply
from aop_mcp.security.policy import refuse_unsandboxed


def location(call: Call, path: str) -> str:
    """An absolute path to `path` of this API, wherever the API is mounted."""
    return call.request.scope.get("root_path", "") + path


async def list_workflows(call: Call) -> Response:
    """`GET /workflows`: the latest version of every workflow."""
    stored = await call.hub.workflows.list()
    return reply(views.workflows(stored))


async def define_workflow(call: Call) -> Response:
    """`POST /workflows`: store a document; 201 for a new version, 200 when unchanged."""
    document = call.hub.workflows.validate(call.body)
    refuse_unsandboxed(call.hub, document)
    stored, created = await call.hub.workflows.define(document)
    if not created:
        return reply(views.workflow_defined(stored, created))
    where = location(call, f"/workflows/{stored.name}?version={stored.version}")
    return reply(views.workflow_defined(stored, created), 201, {"Location": where})


async def get_workflow(call: Call) -> Response:
    """`GET /workflows/{name}`: its latest version, or `?version=`."""
    stored = await call.hub.workflows.get(call.param("name"), call.query.version)
    return reply(views.workflow(stored))


async def validate_workflow(call: Call) -> Response:
    """`POST /workflows/validate`: check a document without storing it."""
    document = call.hub.workflows.validate(call.body)
    refuse_unsandboxed(call.hub, document)
    return reply(views.workflow_valid(document))
