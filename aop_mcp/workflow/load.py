"""Turning YAML, JSON, a file or tool arguments into a checked `WorkflowDocument`.

Every fault found becomes a `Problem` naming the task and the field, in words a person or an
LLM can act on; `parse_workflow` reports all of them at once in one `InvalidWorkflow`.
"""

from __future__ import annotations

import difflib
import types
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from aop_mcp.errors import InvalidWorkflow, Problem
from aop_mcp.workflow.document import ERROR_TYPE, RUN_KINDS, WorkflowDocument
from aop_mcp.workflow.graph import check_graph, graph_for_checks
from aop_mcp.workflow.templating import check_templates

Loc = list[str | int]

_PREFIXES = ("Value error, ", "Assertion failed, ")
_SHOWN_INPUT = 80  # longest repr of a bad value quoted back in a message
# The discriminator tags pydantic puts in a location after these fields (dropped from it).
_TAGS: dict[str | int, tuple[str, ...]] = {"run": tuple(RUN_KINDS), "cache": ("flag", "policy")}


def parse_workflow(source: str | bytes | Mapping[str, Any] | Path) -> WorkflowDocument:
    """A valid document from YAML or JSON text, a file, or a mapping; else InvalidWorkflow."""
    raw = _load(source)
    try:
        doc = WorkflowDocument.model_validate(raw)
    except ValidationError as exc:
        raise InvalidWorkflow([_problem(error, raw) for error in exc.errors()]) from exc
    problems = check_graph(doc)
    problems += check_templates(doc, graph_for_checks(doc))
    if problems:
        raise InvalidWorkflow(problems)
    return doc


def _document_problem(message: str) -> InvalidWorkflow:
    return InvalidWorkflow([Problem("document", message)])


def _load(source: str | bytes | Mapping[str, Any] | Path) -> Any:
    if isinstance(source, Mapping):
        return source
    if isinstance(source, Path):
        try:
            source = source.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise _document_problem(
                f"cannot read the workflow file {str(source)!r}: {exc}"
            ) from exc
    if isinstance(source, bytes):
        try:
            source = source.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise _document_problem(f"the document is not UTF-8 text: {exc}") from exc
    raw = _parse_yaml(source)
    if not isinstance(raw, dict):
        what = "nothing" if raw is None else f"a {type(raw).__name__}"
        raise _document_problem(
            f"a workflow document is a mapping with name and tasks; this one holds {what}"
        )
    return raw


def _parse_yaml(text: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        what = exc.problem or exc.context or "cannot be parsed"
        raise _document_problem(f"YAML syntax error{where}: {what}") from exc
    except yaml.YAMLError as exc:
        raise _document_problem(f"YAML syntax error: {exc}") from exc


# --- pydantic errors to problems ------------------------------------------------------------


def _problem(error: ErrorDetails, raw: Any) -> Problem:
    """One pydantic error as a Problem: the task's id from `raw`, the field inside it."""
    loc: Loc = list(error["loc"])
    message = _message(error, loc)
    loc = _field_loc(error, loc)
    if len(loc) >= 2 and loc[0] == "tasks" and isinstance(loc[1], int):
        index = loc[1]
        field = _dotted(loc[2:]) or f"tasks[{index}]"
        return Problem(field, message, _raw_task_id(raw, index))
    return Problem(_dotted(loc) or "document", message)


def _field_loc(error: ErrorDetails, loc: Loc) -> Loc:
    """The location a user would name: tags dropped, the sub-field at fault added."""
    ctx = error.get("ctx") or {}
    if error["type"].startswith("union_tag_"):
        loc = [*loc, str(ctx.get("discriminator", "")).strip("'")]
    elif error["type"] == ERROR_TYPE and ctx.get("field"):
        loc = [*loc, ctx["field"]]
    # pydantic puts the discriminator's tag in the location: run.local.command
    return [part for i, part in enumerate(loc) if not (i and part in _TAGS.get(loc[i - 1], ()))]


def _dotted(loc: Loc) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else f".{part}"
    return text.lstrip(".")


def _raw_task_id(raw: Any, index: int) -> str:
    tasks = raw.get("tasks") if isinstance(raw, Mapping) else None
    task = tasks[index] if isinstance(tasks, list) and index < len(tasks) else None
    task_id = task.get("id") if isinstance(task, Mapping) else None
    return task_id if isinstance(task_id, str) else f"tasks[{index}]"


def _message(error: ErrorDetails, loc: Loc) -> str:
    kind, ctx = error["type"], error.get("ctx") or {}
    if kind == ERROR_TYPE:
        return str(ctx["message"])
    if kind == "union_tag_invalid":
        return f"unknown executor {ctx['tag']!r}; known executors: {', '.join(RUN_KINDS)}"
    if kind == "union_tag_not_found":
        return f"missing field 'executor'; known executors: {', '.join(RUN_KINDS)}"
    if kind == "extra_forbidden":
        return _unknown_field(loc)
    if kind == "missing":
        return f"missing required field {loc[-1]!r}"
    message = error["msg"]
    for prefix in _PREFIXES:
        message = message.removeprefix(prefix)
    return message + _got(error["input"])


def _got(value: Any) -> str:
    if isinstance(value, str | int | float | bool) or value is None:
        shown = repr(value)
        if len(shown) <= _SHOWN_INPUT:
            return f" (got {shown})"
    return ""


def _unknown_field(loc: Loc) -> str:
    name = str(loc[-1])
    known = _fields_at(loc[:-1])
    if not known:
        return f"unknown field {name!r}"
    close = difflib.get_close_matches(name, known, n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return f"unknown field {name!r}; {hint}known fields: {', '.join(known)}"


def _fields_at(loc: Loc) -> list[str]:
    """The field names of the model found at `loc`, [] when it cannot be told."""
    model: type[BaseModel] | None = WorkflowDocument
    parts = list(loc)
    while parts and model is not None:
        info = model.model_fields.get(str(parts.pop(0)))
        model = _inner_model(info.annotation, parts) if info else None
    return list(model.model_fields) if model is not None else []


def _inner_model(annotation: Any, parts: Loc) -> type[BaseModel] | None:
    """The model a field's value is, consuming the list indexes, keys or tag in `parts`."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Annotated:
        return _inner_model(args[0], parts)
    if origin in (list, dict) and parts:
        parts.pop(0)
        return _inner_model(args[-1], parts)
    if origin in (Union, types.UnionType):
        models = [m for a in args if (m := _inner_model(a, [])) is not None]
        if parts and parts[0] in RUN_KINDS:
            return RUN_KINDS[str(parts.pop(0))]
        return models[0] if len(models) == 1 else None
    return None
