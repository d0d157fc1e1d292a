"""Who may define workflows whose `local` tasks would run unsandboxed on this host."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aop_mcp.errors import PolicyRefused
from aop_mcp.workflow.document import WorkflowDocument

if TYPE_CHECKING:
    from aop_mcp.hub import Hub


def refuse_unsandboxed(hub: Hub, document: WorkflowDocument) -> None:
    """The policy for a document defined over MCP or HTTP, with this hub's settings."""
    refuse_unsandboxed_local(
        document, sandboxed=hub.sandbox.sandboxed, allowed=hub.settings.allow_unsandboxed
    )


def refuse_unsandboxed_local(document: WorkflowDocument, *, sandboxed: bool, allowed: bool) -> None:
    """Raise PolicyRefused when a remote caller (MCP, HTTP) defines a `local` task while
    local tasks are not sandboxed, unless the operator allowed it (AOP_ALLOW_UNSANDBOXED).

    The CLI's own `aop run` never calls this: its user already runs commands on the host.
    """
    if sandboxed or allowed:
        return
    for task in document.tasks:
        if task.run.executor == "local":
            raise PolicyRefused(
                f"task {task.id!r} is a local task, and local tasks are not sandboxed on "
                "this server; install bubblewrap (`apt-get install bubblewrap`) and restart "
                "it, or have its operator set AOP_ALLOW_UNSANDBOXED=true",
                task_id=task.id,
            )
