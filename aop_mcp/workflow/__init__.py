"""The workflow document: models, loading, the task graph, templates and run inputs."""

from aop_mcp.workflow.document import (
    AgentRun,
    Backoff,
    CachePolicy,
    DaggerRun,
    InputSpec,
    LocalRun,
    PythonRun,
    RetryPolicy,
    TaskSpec,
    WorkflowDocument,
)
from aop_mcp.workflow.graph import Graph, check_graph
from aop_mcp.workflow.inputs import resolve_inputs
from aop_mcp.workflow.load import parse_workflow
from aop_mcp.workflow.templating import (
    OutputView,
    TemplateContext,
    TemplateError,
    evaluate_when,
    render_run,
)

__all__ = [
    "AgentRun",
    "Backoff",
    "CachePolicy",
    "DaggerRun",
    "Graph",
    "InputSpec",
    "LocalRun",
    "OutputView",
    "PythonRun",
    "RetryPolicy",
    "TaskSpec",
    "TemplateContext",
    "TemplateError",
    "WorkflowDocument",
    "check_graph",
    "evaluate_when",
    "parse_workflow",
    "render_run",
    "resolve_inputs",
]
