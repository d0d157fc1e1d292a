"""Run inputs: checking what a caller gives against what the workflow declares.

The CLI passes every value as text (`k=v`), so text given for a non-string input is decoded:
`"3"` for an integer, `"true"` for a boolean, JSON text for an object or an array.
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Mapping
from typing import Any

from aop_mcp.errors import InvalidInputs, Problem
from aop_mcp.workflow.document import InputSpec, InputType, WorkflowDocument, value_matches

_BOOLEANS = {"true": True, "false": False}


def resolve_inputs(doc: WorkflowDocument, given: Mapping[str, Any]) -> dict[str, Any]:
    """The run's inputs: `given` checked and decoded, defaults filled in; else InvalidInputs.

    An optional input with no default and no value is None, so templates can test it.
    """
    problems = [_unknown(name, doc) for name in given if name not in doc.inputs]
    resolved: dict[str, Any] = {}
    for name, spec in doc.inputs.items():
        try:
            resolved[name] = _resolve_one(name, spec, given.get(name))
        except ValueError as exc:
            problems.append(Problem(f"inputs.{name}", str(exc)))
    if problems:
        raise InvalidInputs(problems)
    return resolved


def _unknown(name: str, doc: WorkflowDocument) -> Problem:
    declared = ", ".join(sorted(doc.inputs))
    known = f"declared inputs: {declared}" if declared else "this workflow declares no inputs"
    return Problem(f"inputs.{name}", f"unknown input {name!r}; {known}")


def _resolve_one(name: str, spec: InputSpec, value: Any) -> Any:
    if value is not None:
        return coerce(spec.type, value)
    if spec.default is not None:
        return copy.deepcopy(spec.default)  # a run must not share a mutable default
    if spec.is_required:
        about = f" ({spec.description})" if spec.description else ""
        raise ValueError(f"missing required input {name!r} of type {spec.type}{about}")
    return None


def coerce(type_: InputType, value: Any) -> Any:
    """`value` as the input type, decoding text; ValueError says what was expected."""
    if value_matches(type_, value):
        return value
    if type_ == "number" or type_ == "integer":
        return _number(type_, value)
    if isinstance(value, str) and type_ == "boolean" and value.strip().lower() in _BOOLEANS:
        return _BOOLEANS[value.strip().lower()]
    if isinstance(value, str) and type_ in ("object", "array"):
        return _json(type_, value)
    raise ValueError(f"expected {_expected(type_)}, got {_shown(value)}")


def _number(type_: InputType, value: Any) -> int | float:
    number = _parse_number(value) if isinstance(value, str) else value
    # JSON clients may send 3.0 for 3.
    if type_ == "integer" and isinstance(number, float) and number.is_integer():
        number = int(number)
    finite = not isinstance(number, float) or math.isfinite(number)
    if finite and value_matches(type_, number):
        return number
    raise ValueError(f"expected {_expected(type_)}, got {_shown(value)}")


def _parse_number(text: str) -> int | float | None:
    for parse in (int, float):
        try:
            return parse(text.strip())
        except ValueError:
            continue
    return None


def _json(type_: InputType, text: str) -> Any:
    try:
        decoded = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"expected {_expected(type_)}; the text is not JSON: {exc}") from exc
    if not value_matches(type_, decoded):
        raise ValueError(f"expected {_expected(type_)}, got {_shown(text)}")
    return decoded


def _expected(type_: InputType) -> str:
    return {
        "string": "a string",
        "integer": "an integer (e.g. 3)",
        "number": "a number (e.g. 2.5)",
        "boolean": "a boolean (true or false)",
        "object": 'an object (JSON text such as {"k": 1})',
        "array": "an array (JSON text such as [1, 2])",
    }[type_]


def _shown(value: Any) -> str:
    shown = repr(value)
    return shown if len(shown) <= 80 else shown[:77] + "..."
