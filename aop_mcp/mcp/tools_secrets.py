"""Secret tools: set, list and delete the hub's secrets (admin tokens only).

No tool returns a value: a secret is written here and read back only by executors.
"""

from __future__ import annotations

from typing import Annotated

from mcp.server.mcpserver import MCPServer
from mcp_types import ToolAnnotations
from pydantic import Field

from aop_mcp.mcp.auth import require
from aop_mcp.mcp.errors import tool_errors
from aop_mcp.mcp.holder import HubHolder
from aop_mcp.mcp.views import View, iso
from aop_mcp.security.principal import Access
from aop_mcp.security.secrets import SecretInfo

SecretName = Annotated[
    str,
    Field(description="like an environment variable: letters, digits and _, e.g. API_KEY"),
]


class SecretView(View):
    """A secret without its value."""

    name: str
    version: int = Field(description="1 when first set, one more at each set")
    created_at: str | None
    updated_at: str | None


class SecretListView(View):
    secrets: list[SecretView] = Field(description="by name; values are never shown")


class SecretDeletedView(View):
    name: str
    deleted: bool


def secret_view(info: SecretInfo) -> SecretView:
    return SecretView(
        name=info.name,
        version=info.version,
        created_at=iso(info.created_at),
        updated_at=iso(info.updated_at),
    )


def register(server: MCPServer, hubs: HubHolder) -> None:
    """Add the secret tools to `server`."""

    @server.tool(annotations=ToolAnnotations(idempotent_hint=False, open_world_hint=False))
    @tool_errors
    async def secret_set(
        name: SecretName,
        value: Annotated[str, Field(description="the secret value; it is never shown again")],
    ) -> SecretView:
        """Store a secret (encrypted at rest) for tasks to use; setting it again makes a new
        version. Admin tokens only. The value is never returned by any tool: keep your own
        copy if you need it.
        """
        require(Access.ADMIN, "set a secret")
        hub = await hubs.wait_hub()
        return secret_view(await hub.secrets.set(name, value))

    @server.tool(annotations=ToolAnnotations(read_only_hint=True, open_world_hint=False))
    @tool_errors
    async def secret_list() -> SecretListView:
        """List the hub's secrets by name with their version and times, never their values.

        Admin tokens only.
        """
        require(Access.ADMIN, "list secrets")
        hub = await hubs.wait_hub()
        return SecretListView(secrets=[secret_view(info) for info in await hub.secrets.list()])

    @server.tool(annotations=ToolAnnotations(destructive_hint=True, open_world_hint=False))
    @tool_errors
    async def secret_delete(name: SecretName) -> SecretDeletedView:
        """Delete a secret for good (every version). Admin tokens only; secret_list shows names."""
        require(Access.ADMIN, "delete a secret")
        hub = await hubs.wait_hub()
        await hub.secrets.delete(name)
        return SecretDeletedView(name=name, deleted=True)
