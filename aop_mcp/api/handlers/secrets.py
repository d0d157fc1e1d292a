"""Handlers of `/secrets` (admin tokens only): list, set, delete. No reply holds a value."""

from __future__ import annotations

from starlette.responses import Response

from aop_mcp.api import views
from aop_mcp.api.operations import Call, reply


async def list_secrets(call: Call) -> Response:
    """`GET /secrets`: names, versions and times, by name."""
    return reply(views.secrets(await call.hub.secrets.list()))


async def set_secret(call: Call) -> Response:
    """`PUT /secrets/{name}`: store the value (encrypted) as the secret's next version."""
    return reply(views.secret(await call.hub.secrets.set(call.param("name"), call.body.value)))


async def delete_secret(call: Call) -> Response:
    """`DELETE /secrets/{name}`: 204; the secret is gone."""
    await call.hub.secrets.delete(call.param("name"))
    return Response(status_code=204)
