"""Workflow pages: the list, one workflow's graph and run form, and starting a run."""

from __future__ import annotations

from typing import Any

from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import Response

from aop_mcp.errors import InvalidInputs
from aop_mcp.models import WorkflowVersion
from aop_mcp.web.auth import WebContext, WebRefusal, go_to
from aop_mcp.web.render import render
from aop_mcp.web.svg_dag import dag_nodes, dag_svg
from aop_mcp.workflow import WorkflowDocument

#: Form fields of run inputs are named `input.<name>`: nothing else in the form can clash.
INPUT_PREFIX = "input."
RECENT_RUNS = 10


async def workflow_list(request: Request, ctx: WebContext) -> Response:
    """Every workflow at its latest version."""
    workflows = await ctx.hub.workflows.list()
    rows = [_row(stored) for stored in workflows]
    return render("workflows.html", ctx.page(workflows=rows, nav="workflows"))


def _row(stored: WorkflowVersion) -> dict[str, Any]:
    document = stored.document
    return {
        "name": stored.name,
        "version": stored.version,
        "description": document.get("description", ""),
        "tasks": len(document.get("tasks", [])),
        "inputs": len(document.get("inputs", {})),
        "created_at": stored.created_at,
    }


async def workflow_page(request: Request, ctx: WebContext) -> Response:
    """A workflow's graph, its inputs as a form to start a run, and its recent runs."""
    version = _version(request.query_params.get("version"))
    stored = await ctx.hub.workflows.get(request.path_params["name"], version)
    return await _workflow_response(ctx, stored, values={}, problems={})


async def start_run(request: Request, ctx: WebContext) -> Response:
    """Start a run from the form; invalid inputs come back beside their fields (422)."""
    name = request.path_params["name"]
    form = await request.form()
    version = _version(_text(form.get("version")))
    stored = await ctx.hub.workflows.get(name, version)
    values = {
        key.removeprefix(INPUT_PREFIX): _text(value)
        for key, value in form.multi_items()
        if key.startswith(INPUT_PREFIX)
    }
    # An empty field means "not given": the input's default applies, or it is reported missing.
    inputs = {key: value for key, value in values.items() if value}
    try:
        run = await ctx.hub.runs.start(name, inputs, version=stored.version)
    except InvalidInputs as err:
        problems = {p.field.removeprefix("inputs."): p.message for p in err.problems}
        return await _workflow_response(
            ctx, stored, values=values, problems=problems, status_code=422, fragment=request
        )
    return go_to(request, f"/runs/{run.id}")


async def _workflow_response(
    ctx: WebContext,
    stored: WorkflowVersion,
    *,
    values: dict[str, str],
    problems: dict[str, str],
    status_code: int = 200,
    fragment: Request | None = None,
) -> Response:
    document = WorkflowDocument.model_validate(stored.document)
    page = ctx.page(
        nav="workflows",
        workflow=stored,
        document=document,
        inputs=_input_fields(document, values, problems),
        form_error=problems.get("", ""),
        other_problems=[
            f"{field}: {message}"
            for field, message in problems.items()
            if field and field not in document.inputs
        ],
    )
    if fragment is not None and fragment.headers.get("hx-request"):
        return render("_run_form.html", page, status_code=status_code)
    latest = await ctx.hub.workflows.get(stored.name)
    recent = await ctx.hub.runs.list(workflow=stored.name, limit=RECENT_RUNS)
    page.update(
        latest_version=latest.version,
        dag=Markup(dag_svg(dag_nodes(document))),
        runs=recent,
    )
    return render("workflow.html", page, status_code=status_code)


def _input_fields(
    document: WorkflowDocument, values: dict[str, str], problems: dict[str, str]
) -> list[dict[str, Any]]:
    fields = []
    for name, spec in document.inputs.items():
        default = spec.default
        fields.append(
            {
                "name": name,
                "field": INPUT_PREFIX + name,
                "type": spec.type,
                "description": spec.description,
                "required": spec.is_required,
                "value": values.get(name, ""),
                "placeholder": "" if default is None else str(default),
                "multiline": spec.type in ("object", "array"),
                "error": problems.get(name, ""),
            }
        )
    return fields


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def _version(raw: str | None) -> int | None:
    if not raw:
        return None
    try:
        version = int(raw)
    except ValueError:
        version = 0
    if version < 1:
        raise WebRefusal(400, f"version must be a version number (1, 2, …), got {raw!r}")
    return version
