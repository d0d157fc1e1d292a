"""Resources: a workflow's document, a run with its task runs, and a run's graph."""

from __future__ import annotations

import json

from mcp.server.mcpserver import MCPServer

from aop_mcp.mcp.errors import resource_errors
from aop_mcp.mcp.holder import HubHolder
from aop_mcp.mcp.mermaid import run_flowchart
from aop_mcp.mcp.views import run_detail_view

WORKFLOW_URI = "aop://workflows/{name}"
RUN_URI = "aop://runs/{run_id}"
GRAPH_URI = "aop://runs/{run_id}/graph"


def run_uris(run_id: str) -> list[str]:
    """The resources that change when a run changes (what subscribers are told about)."""
    return [RUN_URI.format(run_id=run_id), GRAPH_URI.format(run_id=run_id)]


def register(server: MCPServer, hubs: HubHolder) -> None:
    """Add the resource templates to `server`."""

    @server.resource(
        WORKFLOW_URI,
        name="workflow",
        description="The latest stored document of a workflow, as JSON.",
        mime_type="application/json",
    )
    @resource_errors
    async def workflow_document(name: str) -> str:
        hub = await hubs.wait_hub()
        stored = await hub.workflows.get(name)
        return json.dumps(stored.document, indent=2)

    @server.resource(
        RUN_URI,
        name="run",
        description="A run with its task runs (status, attempts, timings, errors), as JSON. "
        "Subscribe to be told when it changes.",
        mime_type="application/json",
    )
    @resource_errors
    async def run_document(run_id: str) -> str:
        hub = await hubs.wait_hub()
        detail = await hub.runs.get(run_id)
        return run_detail_view(detail.run, detail.tasks).model_dump_json(indent=2)

    @server.resource(
        GRAPH_URI,
        name="run-graph",
        description="A run's task graph as a Mermaid flowchart: one node per task with its "
        "status, edges from needs, dotted edges to fallbacks.",
        mime_type="text/vnd.mermaid",
    )
    @resource_errors
    async def run_graph(run_id: str) -> str:
        hub = await hubs.wait_hub()
        detail = await hub.runs.get(run_id)
        stored = await hub.workflows.get(detail.run.workflow, detail.run.workflow_version)
        return run_flowchart(stored.document, detail.tasks)
