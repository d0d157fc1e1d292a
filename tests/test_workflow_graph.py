"""The task graph: faults found in needs and fallbacks, and the queries the engine makes."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aop_mcp.errors import InvalidWorkflow, Problem
from aop_mcp.workflow import Graph, WorkflowDocument, check_graph, parse_workflow


def task(task_id: str, *needs: str, **extra: Any) -> dict[str, Any]:
    run = {"executor": "local", "command": ["true"]}
    return {"id": task_id, "needs": list(needs), "run": run, **extra}


def document(*tasks: dict[str, Any]) -> WorkflowDocument:
    return WorkflowDocument.model_validate({"name": "wf", "tasks": list(tasks)})


def problems(*tasks: dict[str, Any]) -> list[Problem]:
    return check_graph(document(*tasks))


def test_a_sound_graph_has_no_problems() -> None:
    assert problems(task("a"), task("b", "a"), task("c", "a", "b")) == []


def test_duplicate_task_ids_are_reported() -> None:
    [problem] = problems(task("a"), task("a"))
    assert (problem.task, problem.field) == ("a", "id")
    assert "unique" in problem.message


def test_unknown_need_lists_the_known_tasks() -> None:
    [problem] = problems(task("a"), task("b", "zz"))
    assert (problem.task, problem.field) == ("b", "needs")
    assert problem.message == "needs unknown task 'zz'; known tasks: a, b"


def test_a_task_needing_itself_is_reported() -> None:
    [problem] = problems(task("a", "a"))
    assert (problem.task, problem.field) == ("a", "needs")
    assert "itself" in problem.message


def test_a_repeated_need_is_reported() -> None:
    [problem] = problems(task("a"), task("b", "a", "a"))
    assert (problem.task, problem.field) == ("b", "needs")
    assert "'a' is listed 2 times" in problem.message


def test_cycle_is_reported_with_its_path() -> None:
    [problem] = problems(task("a", "c"), task("b", "a"), task("c", "b"), task("d", "a"))
    assert (problem.task, problem.field) == ("a", "needs")
    assert "a -> c -> b -> a" in problem.message


def test_each_distinct_cycle_is_reported_once_in_document_order() -> None:
    found = problems(task("a", "b"), task("b", "a"), task("x", "y"), task("y", "x"))
    assert [p.message.split(": ")[1].split(";")[0] for p in found] == [
        "a -> b -> a",
        "x -> y -> x",
    ]


def test_unknown_fallback_lists_the_known_tasks() -> None:
    [problem] = problems(task("a", fallback="zz"))
    assert (problem.task, problem.field) == ("a", "fallback")
    assert "unknown task 'zz'; known tasks: a" in problem.message


def test_a_task_cannot_be_its_own_fallback() -> None:
    [problem] = problems(task("a", fallback="a"))
    assert (problem.task, problem.field) == ("a", "fallback")


def test_a_fallback_upstream_of_its_primary_is_explained() -> None:
    [problem] = problems(task("f"), task("b", "f"), task("a", "b", fallback="f"))
    assert (problem.task, problem.field) == ("a", "fallback")
    assert "upstream of 'a'" in problem.message
    assert "runs only after its primary failed" in problem.message


def test_needing_a_fallback_instead_of_its_primary_is_explained() -> None:
    [problem] = problems(task("a", fallback="f"), task("f"), task("c", "f"))
    assert (problem.task, problem.field) == ("c", "needs")
    assert "fallback of 'a'" in problem.message
    assert "name 'a' in needs instead" in problem.message


def test_a_fallback_that_needs_its_primary_is_refused() -> None:
    [problem] = problems(task("a", fallback="f"), task("f", "a"))
    assert (problem.task, problem.field) == ("a", "fallback")
    assert "needs 'a'" in problem.message


def test_one_fallback_cannot_serve_two_primaries() -> None:
    [problem] = problems(task("a", fallback="f"), task("b", fallback="f"), task("f"))
    assert (problem.task, problem.field) == ("b", "fallback")
    assert "already the fallback of 'a'" in problem.message


def test_a_loop_of_fallbacks_is_refused() -> None:
    [problem] = problems(task("a", fallback="b"), task("b", fallback="a"))
    assert problem.field == "fallback"
    assert "a -> b -> a" in problem.message


def test_a_chain_of_fallbacks_is_allowed() -> None:
    assert problems(task("a", fallback="b"), task("b", fallback="c"), task("c")) == []


def test_graph_problems_reach_parse_workflow() -> None:
    doc = {"name": "wf", "tasks": [task("a", "b"), task("b", "a")]}
    with pytest.raises(InvalidWorkflow) as caught:
        parse_workflow(doc)
    assert caught.value.task == "a"
    assert caught.value.field == "needs"


# --- Graph ----------------------------------------------------------------------------------


def diamond() -> Graph:
    return Graph(
        document(
            task("top"),
            task("left", "top"),
            task("right", "top"),
            task("bottom", "right", "left", fallback="rescue"),
            task("rescue"),
        )
    )


def test_order_is_topological_with_ties_in_document_order() -> None:
    graph = Graph(document(task("c", "b"), task("x"), task("b"), task("a", "x")))
    assert graph.order == ("x", "b", "c", "a")


def test_direct_needs_and_dependants() -> None:
    graph = diamond()
    assert graph.needs("bottom") == ("right", "left")
    assert graph.dependants("top") == ("left", "right")
    assert graph.dependants("bottom") == ()


def test_transitive_upstream_and_downstream() -> None:
    graph = diamond()
    assert graph.upstream("bottom") == {"top", "left", "right"}
    assert graph.upstream("top") == frozenset()
    assert graph.downstream("top") == {"left", "right", "bottom"}


def test_fallback_queries() -> None:
    graph = diamond()
    assert graph.fallback_of("rescue") == "bottom"
    assert graph.is_fallback("rescue")
    assert graph.fallback_of("bottom") is None
    assert not graph.is_fallback("bottom")


def test_graph_refuses_an_unsound_document() -> None:
    with pytest.raises(InvalidWorkflow, match="cycle"):
        Graph(document(task("a", "b"), task("b", "a")))


def test_a_long_chain_does_not_hit_the_recursion_limit() -> None:
    chain = [task("t0")] + [task(f"t{i}", f"t{i - 1}") for i in range(1, 3000)]
    graph = Graph(document(*chain))
    assert graph.order[-1] == "t2999"
    assert len(graph.upstream("t2999")) == 2999


@st.composite
def random_graphs(draw: st.DrawFn) -> list[dict[str, Any]]:
    size = draw(st.integers(1, 8))
    ids = [f"t{i}" for i in range(size)]
    needs = [sorted(draw(st.sets(st.sampled_from(ids))) - {task_id}) for task_id in ids]
    return [task(task_id, *task_needs) for task_id, task_needs in zip(ids, needs, strict=True)]


@given(random_graphs())
def test_a_random_graph_is_ordered_or_its_cycle_is_named(tasks: list[dict[str, Any]]) -> None:
    doc = document(*tasks)
    found = check_graph(doc)
    if not found:
        graph = Graph(doc)
        position = {task_id: i for i, task_id in enumerate(graph.order)}
        assert sorted(graph.order) == sorted(t["id"] for t in tasks)
        for t in tasks:
            assert all(position[need] < position[t["id"]] for need in t["needs"])
        return
    for problem in found:
        path = problem.message.split(": ")[1].split(";")[0].split(" -> ")
        assert path[0] == path[-1] == problem.task
        for here, there in itertools.pairwise(path):
            assert there in doc.task(here).needs
