"""Run inputs: what a caller gives, checked and decoded against what the workflow declares."""

from __future__ import annotations

from typing import Any

import pytest

from aop_mcp.errors import InvalidInputs
from aop_mcp.workflow import WorkflowDocument, resolve_inputs

DOC = WorkflowDocument.model_validate(
    {
        "name": "wf",
        "inputs": {
            "env": {"description": "where to deploy"},
            "count": {"type": "integer", "default": 1},
            "ratio": {"type": "number", "required": False},
            "dry_run": {"type": "boolean", "default": False},
            "labels": {"type": "object", "default": {"team": "core"}},
            "hosts": {"type": "array", "required": False},
        },
        "tasks": [{"id": "a", "run": {"executor": "local", "command": ["true"]}}],
    }
)


def problems_for(given: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(InvalidInputs) as caught:
        resolve_inputs(DOC, given)
    return {p.field: p.message for p in caught.value.problems}


def test_defaults_fill_in_what_is_not_given() -> None:
    assert resolve_inputs(DOC, {"env": "prod"}) == {
        "env": "prod",
        "count": 1,
        "ratio": None,
        "dry_run": False,
        "labels": {"team": "core"},
        "hosts": None,
    }


def test_a_default_is_not_shared_between_runs() -> None:
    first = resolve_inputs(DOC, {"env": "prod"})
    first["labels"]["team"] = "changed"
    assert resolve_inputs(DOC, {"env": "prod"})["labels"] == {"team": "core"}


def test_cli_strings_are_decoded_to_the_declared_types() -> None:
    given = {
        "env": "prod",
        "count": "3",
        "ratio": "0.5",
        "dry_run": "true",
        "labels": '{"team": "web"}',
        "hosts": '["a", "b"]',
    }
    assert resolve_inputs(DOC, given) == {
        "env": "prod",
        "count": 3,
        "ratio": 0.5,
        "dry_run": True,
        "labels": {"team": "web"},
        "hosts": ["a", "b"],
    }


def test_json_values_are_taken_as_they_are() -> None:
    given = {"env": "x", "count": 4, "ratio": 2, "dry_run": True, "hosts": []}
    resolved = resolve_inputs(DOC, given)
    assert (resolved["count"], resolved["ratio"], resolved["dry_run"]) == (4, 2, True)


def test_a_whole_float_counts_as_an_integer() -> None:
    assert resolve_inputs(DOC, {"env": "x", "count": 3.0})["count"] == 3


def test_false_text_is_false() -> None:
    assert resolve_inputs(DOC, {"env": "x", "dry_run": "False"})["dry_run"] is False


def test_a_missing_required_input_is_reported_with_its_description() -> None:
    found = problems_for({})
    assert found == {"inputs.env": "missing required input 'env' of type string (where to deploy)"}


def test_unknown_inputs_are_reported_with_the_declared_names() -> None:
    found = problems_for({"env": "x", "colour": "red"})
    assert found["inputs.colour"] == (
        "unknown input 'colour'; declared inputs: count, dry_run, env, hosts, labels, ratio"
    )


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("count", "three"),
        ("count", "2.5"),
        ("count", True),
        ("ratio", "nan"),
        ("ratio", "fast"),
        ("dry_run", "maybe"),
        ("dry_run", 1),
        ("labels", "[1]"),
        ("labels", "{not json"),
        ("hosts", '{"a": 1}'),
        ("env", 5),
    ],
)
def test_a_value_of_the_wrong_type_is_reported(name: str, value: Any) -> None:
    found = problems_for({"env": "x", name: value})
    assert list(found) == [f"inputs.{name}"]
    assert "expected" in found[f"inputs.{name}"]


def test_every_problem_is_reported_at_once() -> None:
    found = problems_for({"count": "x", "nope": 1})
    assert set(found) == {"inputs.count", "inputs.nope", "inputs.env"}


def test_a_workflow_without_inputs_says_so() -> None:
    doc = DOC.model_copy(update={"inputs": {}})
    with pytest.raises(InvalidInputs, match="declares no inputs"):
        resolve_inputs(doc, {"x": 1})
