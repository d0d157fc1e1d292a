"""Workflow tools: validate, define, list and read workflow documents."""

from __future__ import annotations

from typing import Annotated, Any

from mcp.server.mcpserver import MCPServer
from mcp_types import ToolAnnotations
from pydantic import Field

from aop_mcp.errors import InvalidWorkflow
from aop_mcp.mcp.auth import require_writer
from aop_mcp.mcp.errors import tool_errors
from aop_mcp.mcp.holder import HubHolder
from aop_mcp.mcp.views import View, WorkflowInfo, WorkflowView, workflow_info, workflow_view
from aop_mcp.security.policy import refuse_unsandboxed

Document = Annotated[
    str | dict[str, Any],
    Field(
        description="The workflow document: YAML or JSON text, or the document as an object "
        "(keys: name, description, inputs, max_parallel, tasks). See the design_workflow prompt."
    ),
]

READ_ONLY = ToolAnnotations(read_only_hint=True, open_world_hint=False)


class ProblemView(View):
    task: str | None = Field(description="the task at fault, or null for the document itself")
    field: str = Field(description="the field at fault, e.g. run.command or needs")
    message: str


class ValidationView(View):
    valid: bool
    name: str | None = None
    task_count: int | None = None
    problems: list[ProblemView] = Field(description="every fault found; empty when valid")


class DefineView(View):
    name: str
    version: int
    created: bool = Field(description="false when the document equals the latest version")
    task_count: int


class WorkflowListView(View):
    workflows: list[WorkflowInfo]


def register(server: MCPServer, hubs: HubHolder) -> None:
    """Add the workflow tools to `server`."""

    @server.tool(annotations=READ_ONLY)
    @tool_errors
    async def workflow_validate(document: Document) -> ValidationView:
        """Check a workflow document without storing or running anything.

        Use it before workflow_define, and after every fix. Returns `valid` and, when the
        document is not valid, every problem found, each naming the task and the field at
        fault (for example task 'build', field 'run.command'). Fix them all, then call it
        again until `valid` is true.
        """
        hub = await hubs.wait_hub()
        try:
            parsed = hub.workflows.validate(document)
        except InvalidWorkflow as err:
            problems = [
                ProblemView(task=p.task, field=p.field, message=p.message) for p in err.problems
            ]
            return ValidationView(valid=False, problems=problems)
        refuse_unsandboxed(hub, parsed)  # valid, but this server would refuse to define it
        return ValidationView(
            valid=True, name=parsed.name, task_count=len(parsed.tasks), problems=[]
        )

    @server.tool(annotations=ToolAnnotations(idempotent_hint=True, open_world_hint=False))
    @tool_errors
    async def workflow_define(document: Document) -> DefineView:
        """Store a workflow document under its `name`, so runs of it can be started.

        A changed document becomes the next version (1, 2, ...); an unchanged one keeps its
        version and `created` is false, so calling it twice is harmless. Returns the name,
        version, whether a version was created and the number of tasks. An invalid document
        is an error listing every problem with its task and field: fix them (workflow_validate
        checks without storing), then call again. Next: run_start with the name.
        """
        require_writer("define a workflow")
        hub = await hubs.wait_hub()
        parsed = hub.workflows.validate(document)
        refuse_unsandboxed(hub, parsed)
        stored, created = await hub.workflows.define(parsed)
        return DefineView(
            name=stored.name,
            version=stored.version,
            created=created,
            task_count=len(stored.document.get("tasks", [])),
        )

    @server.tool(annotations=READ_ONLY)
    @tool_errors
    async def workflow_list() -> WorkflowListView:
        """List every stored workflow (its latest version): name, version, description, tasks.

        Use it to find the name to pass to run_start or workflow_get.
        """
        hub = await hubs.wait_hub()
        return WorkflowListView(workflows=[workflow_info(w) for w in await hub.workflows.list()])

    @server.tool(annotations=READ_ONLY)
    @tool_errors
    async def workflow_get(
        name: Annotated[str, Field(description="the workflow's name, as workflow_list shows it")],
        version: Annotated[
            int | None, Field(description="a version number; omit for the latest", ge=1)
        ] = None,
    ) -> WorkflowView:
        """Read a stored workflow: its document (tasks, declared inputs) and version info.

        Use it to see which inputs run_start needs, or to change a document and define it
        again. An unknown name or version is an error; workflow_list shows what exists.
        """
        hub = await hubs.wait_hub()
        return workflow_view(await hub.workflows.get(name, version))
