"""Jinja2 templates in task specs: rendering at run time, checking at definition time.

Everything renders in Jinja2's immutable sandbox with StrictUndefined, so a template cannot
reach Python internals nor mutate what it is given, and a missing name or key is an error
instead of an empty string. Templates see two names: `inputs` (the run's inputs) and `tasks`
(`tasks.<id>.output`, `tasks.<id>.exit_code` of upstream tasks that succeeded).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import jinja2
from jinja2 import meta, nodes
from jinja2.environment import TemplateExpression
from jinja2.parser import Parser
from jinja2.sandbox import ImmutableSandboxedEnvironment
from pydantic import BaseModel

from aop_mcp.errors import Problem
from aop_mcp.models import TaskOutput
from aop_mcp.workflow.document import TaskSpec, WorkflowDocument
from aop_mcp.workflow.graph import Graph

_NAMES = frozenset({"inputs", "tasks"})
_TASK_FIELDS = frozenset({"output", "exit_code"})
_SHOWN_SOURCE = 200  # characters of a template quoted in an error message


class TemplateError(Exception):
    """A template could not be parsed, evaluated or rendered; `field` says which one."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class _Environment(ImmutableSandboxedEnvironment):
    """The sandbox, where `x.key` on a dict means the key even when dict has such a method."""

    def getattr(self, obj: Any, attribute: str) -> Any:
        """Prefer a dict's key: JSON outputs often have keys like `items` or `values`."""
        if isinstance(obj, dict) and attribute in obj:
            return obj[attribute]
        return super().getattr(obj, attribute)


_ENV = _Environment(
    undefined=jinja2.StrictUndefined,
    autoescape=False,
    keep_trailing_newline=True,  # a rendered shell script keeps its final newline
)


class OutputView(str):
    """A task's output as templates see it: the text of stdout, plus its parts.

    Being a `str` (stdout without trailing newlines) lets `{{ tasks.x.output }}`, string
    filters and comparisons work as a user expects; `.json`, `.stdout`, `.stderr` and
    `.exit_code` reach the parts.
    """

    json: Any
    stdout: str
    stderr: str
    exit_code: int | None

    def __new__(cls, output: TaskOutput) -> OutputView:
        """Wrap `output`."""
        view = super().__new__(cls, output.stdout.rstrip("\r\n"))
        view.json = output.json
        view.stdout = output.stdout
        view.stderr = output.stderr
        view.exit_code = output.exit_code
        return view


@dataclass(frozen=True, slots=True)
class TemplateContext:
    """What a task's templates may see: the run's inputs and its upstream tasks' outputs."""

    inputs: Mapping[str, Any]
    outputs: Mapping[str, TaskOutput]

    def as_namespace(self) -> dict[str, Any]:
        """The variables a template renders against."""
        tasks = {
            task_id: {"output": OutputView(output), "exit_code": output.exit_code}
            for task_id, output in self.outputs.items()
        }
        return {"inputs": dict(self.inputs), "tasks": tasks}


def _is_template(text: str) -> bool:
    return "{{" in text or "{%" in text


def _shown(source: str) -> str:
    return repr(source if len(source) <= _SHOWN_SOURCE else source[:_SHOWN_SOURCE] + "...")


@lru_cache(maxsize=2048)
def _template(source: str) -> jinja2.Template:
    return _ENV.from_string(source)


@lru_cache(maxsize=1024)
def _expression(source: str) -> TemplateExpression:
    # undefined_to_none=False: a missing name must fail, not quietly become None.
    return _ENV.compile_expression(source, undefined_to_none=False)


# --- rendering ------------------------------------------------------------------------------


def render_run[Spec: BaseModel](spec: Spec, context: TemplateContext) -> Spec:
    """A copy of `spec` with every string in it rendered; raises TemplateError naming the field."""
    namespace: dict[str, Any] | None = None
    changes: dict[str, Any] = {}
    for name in type(spec).model_fields:
        value = getattr(spec, name)
        if name == "executor" or not _has_template(value):
            continue
        namespace = namespace if namespace is not None else context.as_namespace()
        changes[name] = _render_value(value, f"run.{name}", namespace)
    # Untemplated specs come back as they are: the engine renders every attempt.
    return spec.model_copy(update=changes) if changes else spec


def _has_template(value: Any) -> bool:
    return any(_is_template(source) for _, source in _strings(value, ""))


def _render_value(value: Any, field: str, namespace: dict[str, Any]) -> Any:
    if isinstance(value, str):
        return _render_string(value, field, namespace)
    if isinstance(value, list):
        return [_render_value(item, f"{field}[{i}]", namespace) for i, item in enumerate(value)]
    if isinstance(value, dict):
        return {k: _render_value(v, f"{field}.{k}", namespace) for k, v in value.items()}
    if isinstance(value, BaseModel):
        changes = {
            name: _render_value(getattr(value, name), f"{field}.{name}", namespace)
            for name in type(value).model_fields
        }
        return value.model_copy(update=changes)
    return value


def _render_string(source: str, field: str, namespace: dict[str, Any]) -> str:
    if not _is_template(source):
        return source
    try:
        return _template(source).render(namespace)
    except Exception as exc:  # a user's template may raise anything; all of it is theirs
        raise TemplateError(field, f"cannot render {_shown(source)}: {_describe(exc)}") from exc


def evaluate_when(expr: str, context: TemplateContext) -> bool:
    """The truth of a task's `when` expression; raises TemplateError (field `when`)."""
    try:
        return bool(_expression(expr)(context.as_namespace()))
    except Exception as exc:  # a user's expression may raise anything; all of it is theirs
        raise TemplateError("when", f"cannot evaluate {_shown(expr)}: {_describe(exc)}") from exc


def _describe(exc: Exception) -> str:
    if isinstance(exc, jinja2.TemplateSyntaxError):
        return f"syntax error on line {exc.lineno}: {exc.message}"
    if isinstance(exc, jinja2.UndefinedError):
        return f"{exc.message} (no such input, task, key or attribute)"
    if isinstance(exc, jinja2.TemplateError):
        return str(exc.message)
    return f"{type(exc).__name__}: {exc}"


# --- checking -------------------------------------------------------------------------------


def check_templates(doc: WorkflowDocument, graph: Graph | None) -> list[Problem]:
    """Template faults in every task's `run` and `when`.

    Finds syntax errors, unknown names and inputs, and tasks that are not upstream. With no
    graph (the document has structural faults) the upstream check is left out.
    """
    problems: list[Problem] = []
    for task in doc.tasks:
        for field, source in _strings(task.run, "run"):
            if _is_template(source):
                problems += _check_source(source, field, task, doc, graph)
        if task.when is not None:
            problems += _check_source(task.when, "when", task, doc, graph, expression=True)
    return problems


def _strings(value: Any, field: str) -> Iterator[tuple[str, str]]:
    """Every string leaf of a run spec, with its field path."""
    if isinstance(value, str):
        yield field, value
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _strings(item, f"{field}[{i}]")
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(item, f"{field}.{key}")
    elif isinstance(value, BaseModel):
        for name in type(value).model_fields:
            if name != "executor":
                yield from _strings(getattr(value, name), f"{field}.{name}")


def _check_source(
    source: str,
    field: str,
    task: TaskSpec,
    doc: WorkflowDocument,
    graph: Graph | None,
    *,
    expression: bool = False,
) -> list[Problem]:
    try:
        ast = _parse_expression(source) if expression else _ENV.parse(source)
        names = meta.find_undeclared_variables(ast)
    except jinja2.TemplateError as exc:
        return [Problem(field, f"invalid template {_shown(source)}: {_describe(exc)}", task.id)]
    messages = [
        f"template uses unknown name {name!r}; templates see inputs (inputs.x) and tasks "
        "(tasks.x.output)"
        for name in sorted(names - _NAMES)
    ]
    messages += _reference_faults(ast, task, doc, graph)
    return [Problem(field, message, task.id) for message in dict.fromkeys(messages)]


def _parse_expression(source: str) -> nodes.Template:
    # What compile_expression parses, wrapped as a template so jinja2.meta can read it.
    parser = Parser(_ENV, source, state="variable")
    expr = parser.parse_expression()
    if not parser.stream.eos:
        raise jinja2.TemplateSyntaxError(
            "unexpected text after the expression", parser.stream.current.lineno
        )
    ast = nodes.Template([nodes.Output([expr])], lineno=1)
    ast.set_environment(_ENV)
    return ast


def _static_key(node: nodes.Getattr | nodes.Getitem) -> str | None:
    """The name in `x.name` or `x['name']`; None when it is computed at run time."""
    if isinstance(node, nodes.Getattr):
        return node.attr
    if isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, str):
        return node.arg.value
    return None


def _reference_faults(
    ast: nodes.Template, task: TaskSpec, doc: WorkflowDocument, graph: Graph | None
) -> list[str]:
    messages = []
    for node in ast.find_all((nodes.Getattr, nodes.Getitem)):
        key = _static_key(node)
        base = node.node
        if key is None:
            continue
        if isinstance(base, nodes.Name) and base.name == "inputs":
            messages += _input_fault(key, doc)
        elif isinstance(base, nodes.Name) and base.name == "tasks":
            messages += _task_fault(key, task, doc, graph)
        elif _is_task_ref(base) and key not in _TASK_FIELDS:
            messages.append(f"a task in templates has only output and exit_code, not {key!r}")
    return messages


def _is_task_ref(node: nodes.Node) -> bool:
    """Whether `node` is `tasks.x` or `tasks['x']`."""
    return (
        isinstance(node, nodes.Getattr | nodes.Getitem)
        and isinstance(node.node, nodes.Name)
        and node.node.name == "tasks"
    )


def _input_fault(name: str, doc: WorkflowDocument) -> list[str]:
    if name in doc.inputs:
        return []
    declared = ", ".join(sorted(doc.inputs)) or "none"
    return [f"template names input {name!r}, which is not declared; declared inputs: {declared}"]


def _task_fault(name: str, task: TaskSpec, doc: WorkflowDocument, graph: Graph | None) -> list[str]:
    try:
        doc.task(name)
    except KeyError:
        return [f"template names task {name!r}, which does not exist"]
    if name == task.id:
        return [f"template names task {name!r}, its own task; a task cannot see its own output"]
    if graph is not None and name not in graph.upstream(task.id):
        return [
            f"template names task {name!r}, which is not upstream of {task.id!r}; add it to needs"
        ]
    return []
