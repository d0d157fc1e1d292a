"""Templates in tasks: rendered in a sandbox at run time, checked when a workflow is defined."""

from __future__ import annotations

from typing import Any

import pytest

from aop_mcp.errors import InvalidWorkflow, Problem
from aop_mcp.models import TaskOutput
from aop_mcp.workflow import (
    Graph,
    LocalRun,
    OutputView,
    PythonRun,
    TemplateContext,
    TemplateError,
    WorkflowDocument,
    evaluate_when,
    parse_workflow,
    render_run,
)
from aop_mcp.workflow.templating import check_templates

FETCHED = TaskOutput(
    exit_code=0,
    stdout='{"version": "1.2", "items": [1, 2, 3], "deploy": true}\n\n',
    stderr="warn\n",
    json={"version": "1.2", "items": [1, 2, 3], "deploy": True},
)
CONTEXT = TemplateContext(
    inputs={"env": "prod", "count": 3},
    outputs={"fetch": FETCHED, "my-task": TaskOutput(exit_code=0, stdout="plain text\n")},
)


def local(*command: str, **extra: Any) -> LocalRun:
    return LocalRun(executor="local", command=list(command), **extra)


def rendered(source: str) -> str:
    run = render_run(local("echo", source), CONTEXT)
    assert run.command is not None
    return run.command[1]


# --- rendering ------------------------------------------------------------------------------


def test_output_renders_as_stdout_without_trailing_newlines() -> None:
    assert rendered("{{ tasks['my-task'].output }}") == "plain text"


def test_json_fields_of_an_output_render() -> None:
    assert rendered("v{{ tasks.fetch.output.json.version }}") == "v1.2"
    assert rendered("{{ tasks.fetch.output.json['items'] | length }}") == "3"


def test_a_json_key_named_like_a_dict_method_means_the_key() -> None:
    assert rendered("{{ tasks.fetch.output.json.items | sum }}") == "6"


def test_output_parts_and_exit_code_render() -> None:
    assert rendered("{{ tasks.fetch.exit_code }}") == "0"
    assert rendered("{{ tasks.fetch.output.stderr | trim }}") == "warn"
    assert rendered("{{ tasks.fetch.output.exit_code }}") == "0"


def test_inputs_render() -> None:
    assert rendered("--env={{ inputs.env }} -n {{ inputs.count + 1 }}") == "--env=prod -n 4"


def test_strings_without_template_markers_are_left_alone() -> None:
    spec = local("echo", "{ not a template }", "50%")
    assert render_run(spec, CONTEXT) is spec


def test_every_string_of_a_spec_is_rendered() -> None:
    spec = local("echo", "{{ inputs.env }}", env={"ENV": "{{ inputs.env }}"}, workdir="/{{ 1 }}")
    run = render_run(spec, CONTEXT)
    assert run == local("echo", "prod", env={"ENV": "prod"}, workdir="/1")
    assert spec.command == ["echo", "{{ inputs.env }}"]


def test_python_args_are_rendered_inside_lists_and_dicts() -> None:
    spec = PythonRun(
        executor="python",
        function="m:f",
        args={"n": 5, "items": ["{{ inputs.env }}", 1], "nested": {"v": "{{ inputs.count }}"}},
    )
    run = render_run(spec, CONTEXT)
    assert isinstance(run, PythonRun)
    assert run.args == {"n": 5, "items": ["prod", 1], "nested": {"v": "3"}}


def test_a_shell_script_keeps_its_final_newline() -> None:
    run = render_run(LocalRun(executor="local", shell="echo {{ inputs.env }}\n"), CONTEXT)
    assert run.shell == "echo prod\n"


def test_output_view_is_its_stdout_text() -> None:
    view = OutputView(FETCHED)
    assert str(view) == FETCHED.stdout.rstrip("\n")
    assert view.json == FETCHED.json
    assert (view.stdout, view.stderr, view.exit_code) == (FETCHED.stdout, "warn\n", 0)


# --- rendering errors -----------------------------------------------------------------------


def test_a_missing_json_key_is_an_error_not_an_empty_string() -> None:
    with pytest.raises(TemplateError) as caught:
        rendered("{{ tasks.fetch.output.json.missing }}")
    assert caught.value.field == "run.command[1]"
    assert "missing" in caught.value.message


def test_a_missing_input_is_an_error() -> None:
    with pytest.raises(TemplateError, match="no attribute 'nope'"):
        rendered("{{ inputs.nope }}")


@pytest.mark.parametrize(
    "source",
    [
        "{{ ''.__class__ }}",
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ tasks.fetch.output.__class__.__init__.__globals__ }}",
        "{{ inputs.__class__ }}",
        "{{ cycler.__init__.__globals__.os }}",
    ],
)
def test_sandbox_blocks_access_to_python_internals(source: str) -> None:
    with pytest.raises(TemplateError) as caught:
        rendered(source)
    assert caught.value.field == "run.command[1]"


def test_templates_cannot_mutate_what_they_see() -> None:
    with pytest.raises(TemplateError, match="unsafe"):
        rendered("{{ tasks.fetch.output.json['items'].append(4) }}")
    assert FETCHED.json["items"] == [1, 2, 3]


def test_a_render_error_names_the_field() -> None:
    spec = local("echo", env={"A": "ok", "B": "{{ 1 / 0 }}"})
    with pytest.raises(TemplateError) as caught:
        render_run(spec, CONTEXT)
    assert caught.value.field == "run.env.B"
    assert "ZeroDivisionError" in caught.value.message


# --- when -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("tasks.fetch.output.json.deploy == true", True),
        ("inputs.env == 'prod'", True),
        ("inputs.env == 'dev'", False),
        ("tasks['my-task'].output == 'plain text'", True),
        ("tasks.fetch.exit_code != 0", False),
    ],
)
def test_when_expressions_evaluate(expr: str, expected: bool) -> None:
    assert evaluate_when(expr, CONTEXT) is expected


def test_when_naming_something_missing_is_an_error() -> None:
    with pytest.raises(TemplateError) as caught:
        evaluate_when("tasks.fetch.output.json.nope", CONTEXT)
    assert caught.value.field == "when"


def test_when_with_bad_syntax_is_an_error() -> None:
    with pytest.raises(TemplateError) as caught:
        evaluate_when("inputs.env ==", CONTEXT)
    assert caught.value.field == "when"


def test_when_is_sandboxed() -> None:
    with pytest.raises(TemplateError):
        evaluate_when("''.__class__.__mro__", CONTEXT)


# --- checking at definition time ------------------------------------------------------------


def workflow(*tasks: dict[str, Any], inputs: dict[str, Any] | None = None) -> WorkflowDocument:
    return WorkflowDocument.model_validate(
        {"name": "wf", "inputs": inputs or {}, "tasks": list(tasks)}
    )


def shell(task_id: str, script: str, *needs: str, **extra: Any) -> dict[str, Any]:
    run = {"executor": "local", "shell": script}
    return {"id": task_id, "needs": list(needs), "run": run, **extra}


def checked(*tasks: dict[str, Any], inputs: dict[str, Any] | None = None) -> list[Problem]:
    doc = workflow(*tasks, inputs=inputs)
    return check_templates(doc, Graph(doc))


def test_sound_templates_pass() -> None:
    found = checked(
        shell("a", "echo"),
        shell("b", "echo {{ tasks.a.output }}", "a"),
        shell("c", "echo {{ tasks['a'].exit_code }} {{ inputs.x }}", "b", when="inputs.x"),
        inputs={"x": {}},
    )
    assert found == []


def test_a_task_not_upstream_is_reported() -> None:
    [problem] = checked(shell("a", "echo {{ tasks.b.output }}"), shell("b", "echo"))
    assert (problem.task, problem.field) == ("a", "run.shell")
    assert (
        problem.message == "template names task 'b', which is not upstream of 'a'; add it to needs"
    )


def test_a_task_named_by_subscript_is_checked_too() -> None:
    [problem] = checked(shell("a", "{{ tasks['my-b'].output }}"), shell("my-b", "echo"))
    assert "'my-b', which is not upstream of 'a'" in problem.message


def test_transitive_upstream_tasks_may_be_named() -> None:
    found = checked(shell("a", "x"), shell("b", "x", "a"), shell("c", "{{ tasks.a.output }}", "b"))
    assert found == []


def test_an_unknown_task_is_reported() -> None:
    [problem] = checked(shell("a", "{{ tasks.ghost.output }}"))
    assert "task 'ghost', which does not exist" in problem.message


def test_an_undeclared_input_is_reported_with_the_declared_ones() -> None:
    [problem] = checked(shell("a", "{{ inputs.nope }}"), inputs={"env": {}, "count": {}})
    assert (problem.task, problem.field) == ("a", "run.shell")
    assert problem.message.endswith("declared inputs: count, env")


def test_unknown_names_are_reported() -> None:
    [problem] = checked(shell("a", "{{ secrets.token }}"))
    assert "unknown name 'secrets'" in problem.message


def test_jinja_builtins_and_local_variables_are_not_unknown_names() -> None:
    script = "{% for i in range(3) %}{{ i | string }}{% endfor %}{% set y = 1 %}{{ y }}"
    assert checked(shell("a", script)) == []


def test_a_task_field_that_does_not_exist_is_reported() -> None:
    [problem] = checked(shell("a", "x"), shell("b", "{{ tasks.a.stdout }}", "a"))
    assert "only output and exit_code" in problem.message


def test_template_syntax_errors_are_reported() -> None:
    [problem] = checked(shell("a", "echo {{ inputs.x "), inputs={"x": {}})
    assert (problem.task, problem.field) == ("a", "run.shell")
    assert "syntax error" in problem.message


def test_when_is_checked_like_a_template() -> None:
    [problem] = checked(shell("a", "x"), shell("b", "x", when="tasks.a.output == 'y'"))
    assert (problem.task, problem.field) == ("b", "when")
    assert "not upstream of 'b'" in problem.message


def test_command_items_are_checked_with_their_index() -> None:
    run = {"executor": "local", "command": ["echo", "{{ inputs.who }}"]}
    problem = _only(
        {"name": "wf", "tasks": [{"id": "a", "run": run}]},
    )
    assert (problem.task, problem.field) == ("a", "run.command[1]")


def test_a_fallback_may_not_name_its_primarys_upstream() -> None:
    found = checked(
        shell("fetch", "x"),
        shell("main", "{{ tasks.fetch.output }}", "fetch", fallback="spare"),
        shell("spare", "{{ tasks.fetch.output }}"),
    )
    assert [(p.task, p.field) for p in found] == [("spare", "run.shell")]


def test_template_problems_reach_parse_workflow_alongside_fallback_problems() -> None:
    tasks = [shell("a", "{{ tasks.b.output }}", fallback="ghost"), shell("b", "x")]
    with pytest.raises(InvalidWorkflow) as caught:
        parse_workflow({"name": "wf", "tasks": tasks})
    assert {p.field for p in caught.value.problems} == {"fallback", "run.shell"}


def _only(doc: dict[str, Any]) -> Problem:
    with pytest.raises(InvalidWorkflow) as caught:
        parse_workflow(doc)
    [problem] = caught.value.problems
    return problem
