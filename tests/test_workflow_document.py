"""The workflow document: loading from YAML, JSON, dicts and files, and its error messages."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aop_mcp.errors import InvalidWorkflow, Problem
from aop_mcp.models import FailureKind
from aop_mcp.workflow import (
    AgentRun,
    Backoff,
    LocalRun,
    PythonRun,
    RetryPolicy,
    WorkflowDocument,
    parse_workflow,
)

YAML = """
name: summarize-repo
description: fetch then summarize
inputs:
  limit: {type: integer, default: 50}
tasks:
  - id: fetch
    run: {executor: local, command: ["git", "log", "-n", "{{ inputs.limit }}"]}
    retry: {max_attempts: 3, backoff: {initial: 1s, max: 30s}}
  - id: summarize
    needs: [fetch]
    run:
      executor: python
      function: "mypkg.summary:summarize"
      args: {text: "{{ tasks.fetch.output }}"}
    timeout: 2m
"""

AS_DICT: dict[str, Any] = {
    "name": "summarize-repo",
    "description": "fetch then summarize",
    "inputs": {"limit": {"type": "integer", "default": 50, "description": ""}},
    "tasks": [
        {
            "id": "fetch",
            "run": {"executor": "local", "command": ["git", "log", "-n", "{{ inputs.limit }}"]},
            "retry": {"max_attempts": 3, "backoff": {"initial": 1, "max": 30.0}},
        },
        {
            "id": "summarize",
            "needs": ["fetch"],
            "run": {
                "executor": "python",
                "function": "mypkg.summary:summarize",
                "args": {"text": "{{ tasks.fetch.output }}"},
            },
            "timeout": 120,
            "priority": 0,
            "cache": False,
        },
    ],
}


def problems_of(source: Any) -> list[Problem]:
    with pytest.raises(InvalidWorkflow) as caught:
        parse_workflow(source)
    return caught.value.problems


def only_problem(source: Any) -> Problem:
    problems = problems_of(source)
    assert len(problems) == 1, problems
    return problems[0]


def one_task(**task: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"id": "a", "run": {"executor": "local", "command": ["true"]}}
    return {"name": "wf", "tasks": [base | task]}


# --- the same document in every form --------------------------------------------------------


def test_yaml_json_and_dict_give_the_same_document_and_digest() -> None:
    from_yaml = parse_workflow(YAML)
    from_json = parse_workflow(json.dumps(AS_DICT, indent=4))
    from_dict = parse_workflow(AS_DICT)
    from_bytes = parse_workflow(YAML.encode())
    assert from_yaml == from_json == from_dict == from_bytes
    assert from_yaml.digest() == from_json.digest() == from_dict.digest()


def test_stated_defaults_do_not_change_the_digest_but_content_does() -> None:
    plain = parse_workflow(one_task())
    stated = parse_workflow(one_task(priority=0, retry={"max_attempts": 1}, needs=[]))
    changed = parse_workflow(one_task(priority=1))
    assert plain.digest() == stated.digest()
    assert plain.canonical() == stated.canonical()
    assert plain.digest() != changed.digest()


def test_canonical_form_leaves_defaults_out_and_parses_back() -> None:
    doc = parse_workflow(YAML)
    canonical = doc.canonical()
    assert "priority" not in canonical["tasks"][0]
    assert canonical["tasks"][1]["timeout"] == 120.0
    assert parse_workflow(canonical) == doc


def test_a_workflow_file_is_read(tmp_path: Path) -> None:
    path = tmp_path / "wf.yaml"
    path.write_text(YAML)
    assert parse_workflow(path) == parse_workflow(YAML)


def test_task_is_found_by_id_and_a_missing_one_is_a_key_error() -> None:
    doc = parse_workflow(YAML)
    assert doc.task("summarize").needs == ["fetch"]
    assert isinstance(doc.task("fetch").run, LocalRun)
    assert isinstance(doc.task("summarize").run, PythonRun)
    with pytest.raises(KeyError):
        doc.task("nope")


def test_documents_are_frozen() -> None:
    doc = parse_workflow(YAML)
    with pytest.raises(ValueError, match="frozen"):
        doc.name = "other"  # type: ignore[misc]


def test_task_ids_may_contain_dashes() -> None:
    doc = parse_workflow(one_task(id="my-task"))
    assert doc.tasks[0].id == "my-task"


def test_when_may_be_written_with_or_without_braces() -> None:
    bare = parse_workflow(one_task(when="1 == 1"))
    braced = parse_workflow(one_task(when="{{ 1 == 1 }}"))
    assert bare.tasks[0].when == braced.tasks[0].when == "1 == 1"
    assert bare.digest() == braced.digest()


# --- document-level errors ------------------------------------------------------------------


def test_missing_file_is_a_document_problem(tmp_path: Path) -> None:
    problem = only_problem(tmp_path / "absent.yaml")
    assert problem.field == "document"
    assert "absent.yaml" in problem.message


def test_yaml_syntax_error_names_line_and_column() -> None:
    problem = only_problem("name: wf\ntasks:\n  - {id: a\n")
    assert problem.field == "document"
    assert "line 4, column 1" in problem.message


def test_a_document_that_is_not_a_mapping_is_refused() -> None:
    problem = only_problem("- 1\n- 2\n")
    assert (problem.field, problem.task) == ("document", None)
    assert "mapping" in problem.message


def test_empty_task_list_is_refused() -> None:
    problem = only_problem({"name": "wf", "tasks": []})
    assert (problem.field, problem.task) == ("tasks", None)


def test_bad_workflow_name_is_explained() -> None:
    problem = only_problem(one_task() | {"name": "has space"})
    assert (problem.field, problem.task) == ("name", None)
    assert "invalid workflow name 'has space'" in problem.message


def test_input_names_must_be_identifiers() -> None:
    problem = only_problem(one_task() | {"inputs": {"bad-name": {}}})
    assert problem.field == "inputs"
    assert "'bad-name' is not an identifier" in problem.message


def test_input_default_must_match_its_type() -> None:
    problem = only_problem(one_task() | {"inputs": {"n": {"type": "integer", "default": "3"}}})
    assert problem.field == "inputs.n.default"
    assert "not of type integer" in problem.message


def test_max_parallel_must_be_positive() -> None:
    problem = only_problem(one_task() | {"max_parallel": 0})
    assert problem.field == "max_parallel"
    assert "(got 0)" in problem.message


def test_every_problem_is_reported_at_once() -> None:
    doc = {
        "name": "wf",
        "tasks": [
            {"id": "a", "run": {"executor": "local"}, "timeout": "soon"},
            {"id": "b", "run": {"executor": "local", "command": ["x"]}, "priority": "high"},
        ],
    }
    found = {(p.task, p.field) for p in problems_of(doc)}
    assert found == {("a", "run.command"), ("a", "timeout"), ("b", "priority")}


# --- task-level errors ----------------------------------------------------------------------


def test_unknown_executor_lists_the_known_ones() -> None:
    problem = only_problem(one_task(run={"executor": "foo"}))
    assert (problem.task, problem.field) == ("a", "run.executor")
    known = "local, python, agent, dagger"
    assert problem.message == f"unknown executor 'foo'; known executors: {known}"


def test_missing_executor_is_named() -> None:
    problem = only_problem(one_task(run={"command": ["x"]}))
    assert (problem.task, problem.field) == ("a", "run.executor")
    assert "missing field 'executor'" in problem.message


def test_unknown_field_is_named_with_a_suggestion() -> None:
    problem = only_problem(one_task(run={"executor": "local", "comand": ["x"]}))
    assert (problem.task, problem.field) == ("a", "run.comand")
    assert problem.message.startswith("unknown field 'comand'; did you mean 'command'?")
    assert "Extra inputs" not in problem.message


def test_unknown_task_field_lists_task_fields() -> None:
    problem = only_problem(one_task(depends_on=["b"]))
    assert (problem.task, problem.field) == ("a", "depends_on")
    assert "known fields: id, description, needs" in problem.message


def test_local_run_needs_command_or_shell() -> None:
    problem = only_problem(one_task(run={"executor": "local"}))
    assert (problem.task, problem.field) == ("a", "run.command")
    assert "give command" in problem.message


def test_local_run_refuses_both_command_and_shell() -> None:
    problem = only_problem(one_task(run={"executor": "local", "command": ["x"], "shell": "x"}))
    assert (problem.task, problem.field) == ("a", "run.shell")
    assert "not both" in problem.message


def test_command_must_not_be_empty() -> None:
    problem = only_problem(one_task(run={"executor": "local", "command": []}))
    assert (problem.task, problem.field) == ("a", "run.command")


def test_command_items_must_be_strings() -> None:
    problem = only_problem(one_task(run={"executor": "local", "command": ["sleep", 5]}))
    assert (problem.task, problem.field) == ("a", "run.command[1]")
    assert "(got 5)" in problem.message


def test_python_function_must_be_module_colon_attribute() -> None:
    problem = only_problem(one_task(run={"executor": "python", "function": "json.dumps"}))
    assert (problem.task, problem.field) == ("a", "run.function")
    assert "'module.path:attr.path'" in problem.message


def test_agent_run_takes_a_capability_or_an_agent_and_an_input() -> None:
    doc = parse_workflow(
        one_task(run={"executor": "agent", "capability": "summarize", "input": "{{ inputs.x }}"})
        | {"inputs": {"x": {}}}
    )
    run = doc.task("a").run
    assert isinstance(run, AgentRun)
    assert (run.capability, run.agent, run.output) == ("summarize", None, "text")
    by_name = parse_workflow(
        one_task(run={"executor": "agent", "agent": "bob", "input": "hi", "output": "json"})
    )
    assert by_name.task("a").run == AgentRun(
        executor="agent", agent="bob", input="hi", output="json"
    )


@pytest.mark.parametrize(
    ("run", "field", "words"),
    [
        ({"input": "hi"}, "run.capability", "give capability"),
        ({"capability": "c", "agent": "b", "input": "hi"}, "run.agent", "not both"),
        ({"capability": "c"}, "run.input", "missing required field 'input'"),
        ({"capability": "c", "input": "hi", "output": "xml"}, "run.output", "'text' or 'json'"),
        ({"capability": "", "input": "hi"}, "run.capability", "at least 1 character"),
    ],
)
def test_agent_run_errors_name_the_field(run: dict[str, Any], field: str, words: str) -> None:
    problem = only_problem(one_task(run={"executor": "agent", **run}))
    assert (problem.task, problem.field) == ("a", field)
    assert words in problem.message


def test_agent_failure_kinds_are_retried_by_default_and_selectable() -> None:
    default = RetryPolicy()
    for kind in ("agent_error", "unavailable", "invalid_output"):
        assert default.retries(FailureKind(kind))
        assert RetryPolicy(retry_on=[kind]).retry_on == [FailureKind(kind)]


@pytest.mark.parametrize(
    ("run", "field", "words"),
    [
        ({"command": []}, "run.command", "at least the program"),
        ({"command": ["x"], "workdir": "src"}, "run.workdir", "absolute path, like /src"),
        ({"command": ["x"], "cache_volumes": {"pip": "cache"}}, "run.cache_volumes", "absolute"),
        ({"command": ["x"], "secrets": ["1KEY"]}, "run.secrets[0]", "invalid secret name"),
        ({"command": ["x"], "secrets": ["K", "K"]}, "run.secrets", "listed twice"),
        ({"command": ["x"], "secrets": ["K"], "env": {"K": "v"}}, "run.secrets", "drop it"),
    ],
)
def test_dagger_run_errors_name_the_field(run: dict[str, Any], field: str, words: str) -> None:
    problem = only_problem(one_task(run={"executor": "dagger", "image": "alpine", **run}))
    assert (problem.task, problem.field) == ("a", field)
    assert words in problem.message


def test_misconfigured_is_never_retried_and_cannot_be_chosen() -> None:
    assert not RetryPolicy().retries(FailureKind.MISCONFIGURED)
    problem = only_problem(one_task(retry={"retry_on": ["misconfigured"]}))
    assert "'misconfigured' cannot be chosen in retry_on" in problem.message
    assert "replay the dead letter" in problem.message


def test_bad_task_id_is_explained() -> None:
    problem = only_problem(one_task(id="9lives"))
    assert (problem.task, problem.field) == ("9lives", "id")
    assert "invalid task id" in problem.message


def test_a_task_without_id_is_named_by_position() -> None:
    doc = one_task()
    doc["tasks"].append({"run": {"executor": "local", "command": ["x"]}})
    problem = only_problem(doc)
    assert (problem.task, problem.field) == ("tasks[1]", "id")
    assert problem.message == "missing required field 'id'"


def test_a_task_that_is_not_a_mapping_is_named_by_position() -> None:
    doc = one_task()
    doc["tasks"].append("oops")
    problem = only_problem(doc)
    assert (problem.task, problem.field) == ("tasks[1]", "tasks[1]")


def test_bad_duration_gives_a_clear_message() -> None:
    problem = only_problem(one_task(timeout="5 minutes"))
    assert (problem.task, problem.field) == ("a", "timeout")
    assert problem.message == (
        "invalid duration '5 minutes': use a number of seconds or a string like 30s, 5m, 1h"
    )


def test_zero_duration_is_refused() -> None:
    problem = only_problem(one_task(timeout=0))
    assert (problem.task, problem.field) == ("a", "timeout")
    assert "more than 0" in problem.message


def test_backoff_max_below_initial_is_refused() -> None:
    problem = only_problem(one_task(retry={"backoff": {"initial": "10s", "max": "1s"}}))
    assert (problem.task, problem.field) == ("a", "retry.backoff.max")


def test_backoff_duration_error_names_the_nested_field() -> None:
    problem = only_problem(one_task(retry={"backoff": {"initial": "fast"}}))
    assert (problem.task, problem.field) == ("a", "retry.backoff.initial")


def test_max_attempts_below_one_is_refused() -> None:
    problem = only_problem(one_task(retry={"max_attempts": 0}))
    assert (problem.task, problem.field) == ("a", "retry.max_attempts")


@pytest.mark.parametrize(
    ("kind", "why"),
    [("interrupted", "always retries"), ("template", "never retried"), ("boom", "unknown")],
)
def test_retry_on_accepts_only_selectable_kinds(kind: str, why: str) -> None:
    problem = only_problem(one_task(retry={"retry_on": ["timeout", kind]}))
    assert (problem.task, problem.field) == ("a", "retry.retry_on[1]")
    assert why in problem.message
    assert "choose from exit_code, timeout, error" in problem.message


def test_empty_when_is_refused() -> None:
    problem = only_problem(one_task(when="{{ }}"))
    assert (problem.task, problem.field) == ("a", "when")


# --- durations ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("250ms", 0.25),
        ("30s", 30.0),
        ("1.5s", 1.5),
        ("5m", 300.0),
        ("1h", 3600.0),
        ("1h30m", 5400.0),
        ("2m30s", 150.0),
        ("12", 12.0),
        (7, 7.0),
        (0.5, 0.5),
    ],
)
def test_durations_accept_numbers_and_unit_strings(text: str | float, seconds: float) -> None:
    assert Backoff(initial=text, max=10_000).initial == pytest.approx(seconds)


@given(
    hours=st.integers(0, 48),
    minutes=st.integers(0, 59),
    seconds=st.integers(0, 59),
    millis=st.integers(0, 999),
)
def test_any_unit_string_means_its_sum_of_seconds(
    hours: int, minutes: int, seconds: int, millis: int
) -> None:
    total = hours * 3600 + minutes * 60 + seconds + millis / 1000
    units = [(hours, "h"), (minutes, "m"), (seconds, "s"), (millis, "ms")]
    text = "".join(f"{amount}{unit}" for amount, unit in units if amount)
    if not text:
        return
    parsed = Backoff(initial=text, max=10**6).initial
    assert parsed == pytest.approx(total)
    # The stored form (seconds) reads back to the same value.
    assert Backoff(initial=parsed, max=10**6).initial == parsed


# --- retry policy ---------------------------------------------------------------------------


def test_retry_delay_grows_exponentially_without_jitter() -> None:
    policy = RetryPolicy(
        max_attempts=10, backoff=Backoff(initial=1, max=60, multiplier=2, jitter=0)
    )
    delays = [policy.delay(n, random.Random(0)) for n in range(1, 9)]
    assert delays == [1, 2, 4, 8, 16, 32, 60, 60]


def test_retry_delay_jitter_stays_within_bounds() -> None:
    policy = RetryPolicy(backoff=Backoff(initial="1s", max="10s", multiplier=3, jitter=0.5))
    rng = random.Random(42)
    for attempt in range(1, 40):
        base = min(10.0, 3.0 ** (attempt - 1))
        delay = policy.delay(attempt, rng)
        assert base <= delay <= base * 1.5
        assert delay <= 10 * 1.5


def test_retry_delay_survives_huge_attempt_numbers() -> None:
    policy = RetryPolicy(backoff=Backoff(jitter=0))
    assert policy.delay(100_000, random.Random(0)) == 60.0


def test_retry_delay_is_reproducible_with_a_seeded_random() -> None:
    policy = RetryPolicy()
    assert policy.delay(3, random.Random(7)) == policy.delay(3, random.Random(7))


def test_retry_on_selects_which_failures_are_retried() -> None:
    default = RetryPolicy()
    assert default.retries(FailureKind.EXIT_CODE)
    assert default.retries(FailureKind.TIMEOUT)
    assert not default.retries(FailureKind.TEMPLATE)
    only_timeouts = RetryPolicy(retry_on=["timeout"])
    assert not only_timeouts.retries(FailureKind.EXIT_CODE)


def test_an_input_without_default_is_required_unless_said_otherwise() -> None:
    doc = WorkflowDocument.model_validate(
        one_task()
        | {
            "inputs": {
                "needed": {},
                "optional": {"required": False},
                "defaulted": {"default": "x"},
            }
        }
    )
    assert doc.inputs["needed"].is_required
    assert not doc.inputs["optional"].is_required
    assert not doc.inputs["defaulted"].is_required
