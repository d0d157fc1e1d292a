"""The task graph of a workflow: checks that find every structural fault, and `Graph`.

An edge runs from a task to a task it `needs`. A fallback task stands in for its primary: it
runs only when the primary failed for good, and the primary's dependants then see it as done.
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Iterable

from aop_mcp.errors import InvalidWorkflow, Problem
from aop_mcp.workflow.document import WorkflowDocument


def check_graph(doc: WorkflowDocument) -> list[Problem]:
    """Every structural fault of `doc`'s tasks: ids, needs, cycles and fallbacks."""
    problems = _shape_problems(doc)
    fallback_problems = _bad_fallbacks(doc)
    if not problems and not fallback_problems:
        fallback_problems = _misplaced_fallbacks(doc)
    return problems + fallback_problems


def graph_for_checks(doc: WorkflowDocument) -> Graph | None:
    """A Graph for further checks (templates) unless ids, needs or cycles make one impossible.

    Unlike `Graph(doc)` it tolerates faulty fallbacks, so one mistake does not hide others.
    """
    return None if _shape_problems(doc) else Graph(doc, _checked=True)


def _shape_problems(doc: WorkflowDocument) -> list[Problem]:
    return _duplicate_ids(doc) + _bad_needs(doc) + _cycles(doc)


def _known(ids: Iterable[str]) -> str:
    return ", ".join(sorted(ids))


def _duplicate_ids(doc: WorkflowDocument) -> list[Problem]:
    counts = Counter(task.id for task in doc.tasks)
    return [
        Problem("id", f"task id {task_id!r} is used by {count} tasks; ids must be unique", task_id)
        for task_id, count in counts.items()
        if count > 1
    ]


def _bad_needs(doc: WorkflowDocument) -> list[Problem]:
    ids = {task.id for task in doc.tasks}
    problems = []
    for task in doc.tasks:
        for need, count in Counter(task.needs).items():
            if need == task.id:
                problems.append(Problem("needs", "a task cannot need itself", task.id))
            elif need not in ids:
                message = f"needs unknown task {need!r}; known tasks: {_known(ids)}"
                problems.append(Problem("needs", message, task.id))
            if count > 1:
                problems.append(Problem("needs", f"{need!r} is listed {count} times", task.id))
    return problems


def _edges(doc: WorkflowDocument) -> dict[str, list[str]]:
    """Task id -> the known, distinct tasks it needs (self-needs left out: reported apart)."""
    ids = {task.id for task in doc.tasks}
    edges: dict[str, list[str]] = {}
    for task in doc.tasks:
        if task.id not in edges:
            needs = dict.fromkeys(n for n in task.needs if n in ids and n != task.id)
            edges[task.id] = list(needs)
    return edges


def _cycles(doc: WorkflowDocument) -> list[Problem]:
    """One problem per back edge found by a depth-first walk in document order."""
    edges = _edges(doc)
    position = {task_id: index for index, task_id in enumerate(edges)}
    seen: set[tuple[str, ...]] = set()
    problems = []
    for cycle in _find_cycles(edges):
        start = min(range(len(cycle)), key=lambda i: position[cycle[i]])
        rotated = tuple(cycle[start:] + cycle[:start])
        if rotated in seen:
            continue
        seen.add(rotated)
        path = " -> ".join((*rotated, rotated[0]))
        message = f"tasks form a cycle through needs: {path}; remove one of these needs"
        problems.append(Problem("needs", message, rotated[0]))
    return problems


def _find_cycles(edges: dict[str, list[str]]) -> list[list[str]]:
    # Iterative DFS so a long chain of tasks cannot exhaust Python's recursion limit.
    state: dict[str, int] = {}  # 1: on the current path, 2: finished
    cycles = []
    for root in edges:
        if root in state:
            continue
        path = [root]
        stack = [iter(edges[root])]
        state[root] = 1
        while stack:
            child = next(stack[-1], None)
            if child is None:
                state[path.pop()] = 2
                stack.pop()
            elif state.get(child) == 1:
                cycles.append(path[path.index(child) :])
            elif child not in state:
                state[child] = 1
                path.append(child)
                stack.append(iter(edges[child]))
    return cycles


def _bad_fallbacks(doc: WorkflowDocument) -> list[Problem]:
    ids = {task.id for task in doc.tasks}
    primary_of: dict[str, str] = {}
    problems = []
    for task in doc.tasks:
        fallback = task.fallback
        if fallback is None:
            continue
        if fallback == task.id:
            problems.append(Problem("fallback", "a task cannot be its own fallback", task.id))
        elif fallback not in ids:
            message = f"fallback names unknown task {fallback!r}; known tasks: {_known(ids)}"
            problems.append(Problem("fallback", message, task.id))
        elif fallback in primary_of:
            message = (
                f"{fallback!r} is already the fallback of {primary_of[fallback]!r}; "
                "a task can stand in for one primary only"
            )
            problems.append(Problem("fallback", message, task.id))
        else:
            primary_of[fallback] = task.id
    return problems + _fallback_loops(doc, primary_of)


def _fallback_loops(doc: WorkflowDocument, primary_of: dict[str, str]) -> list[Problem]:
    fallback_of = {primary: fallback for fallback, primary in primary_of.items()}
    reported: set[str] = set()
    problems = []
    for task in doc.tasks:
        chain = [task.id]
        while chain[-1] in fallback_of and fallback_of[chain[-1]] not in chain:
            chain.append(fallback_of[chain[-1]])
        if chain[-1] in fallback_of and not reported.intersection(chain):
            reported.update(chain)
            path = " -> ".join((*chain, fallback_of[chain[-1]]))
            message = f"fallbacks form a loop: {path}; a chain of fallbacks must end"
            problems.append(Problem("fallback", message, task.id))
    return problems


def _misplaced_fallbacks(doc: WorkflowDocument) -> list[Problem]:
    """Fallbacks wired into needs. Runs only on an otherwise sound graph (it needs `Graph`)."""
    graph = Graph(doc, _checked=True)
    problems = []
    for primary in doc.tasks:
        fallback = primary.fallback
        if fallback is None:
            continue
        waits_on_it = graph.upstream(primary.id) | {primary.id}
        if fallback in graph.upstream(primary.id):
            message = (
                f"fallback {fallback!r} is upstream of {primary.id!r} (it needs it, directly or "
                "not), but a fallback runs only after its primary failed; take it out of the "
                f"needs that lead to {primary.id!r}"
            )
            problems.append(Problem("fallback", message, primary.id))
        if fallback in graph.downstream(primary.id):
            message = (
                f"fallback {fallback!r} needs {primary.id!r} (directly or not), but it runs only "
                f"when {primary.id!r} failed; take {primary.id!r} out of its needs"
            )
            problems.append(Problem("fallback", message, primary.id))
        problems += [
            Problem(
                "needs",
                f"needs {fallback!r}, which is the fallback of {primary.id!r}; a fallback stands "
                f"in for its primary, so name {primary.id!r} in needs instead",
                dependant,
            )
            for dependant in graph.dependants(fallback)
            if dependant not in waits_on_it
        ]
    return problems


class Graph:
    """The precomputed shape of a valid document; every query is a dictionary lookup."""

    def __init__(self, doc: WorkflowDocument, *, _checked: bool = False) -> None:
        """Build the graph; raise InvalidWorkflow if `doc` has structural faults."""
        if not _checked:
            problems = check_graph(doc)
            if problems:
                raise InvalidWorkflow(problems)
        self._needs = {task.id: tuple(task.needs) for task in doc.tasks}
        dependants: dict[str, list[str]] = {task_id: [] for task_id in self._needs}
        for task_id, needs in self._needs.items():
            for need in needs:
                dependants[need].append(task_id)
        self._dependants = {task_id: tuple(ids) for task_id, ids in dependants.items()}
        self.order: tuple[str, ...] = self._topological_order()
        self._upstream = self._closure(self.order, self._needs)
        self._downstream = self._closure(tuple(reversed(self.order)), self._dependants)
        self._fallback_of = {t.fallback: t.id for t in doc.tasks if t.fallback is not None}

    def _topological_order(self) -> tuple[str, ...]:
        # Kahn's algorithm with a heap on document position: ties keep document order.
        position = {task_id: index for index, task_id in enumerate(self._needs)}
        waiting = {task_id: len(needs) for task_id, needs in self._needs.items()}
        ready = [position[task_id] for task_id, count in waiting.items() if count == 0]
        heapq.heapify(ready)
        ids = list(self._needs)
        order = []
        while ready:
            task_id = ids[heapq.heappop(ready)]
            order.append(task_id)
            for dependant in self._dependants[task_id]:
                waiting[dependant] -= 1
                if waiting[dependant] == 0:
                    heapq.heappush(ready, position[dependant])
        return tuple(order)

    @staticmethod
    def _closure(
        order: tuple[str, ...], direct: dict[str, tuple[str, ...]]
    ) -> dict[str, frozenset[str]]:
        closure: dict[str, frozenset[str]] = {}
        for task_id in order:
            reached = set(direct[task_id])
            for other in direct[task_id]:
                reached |= closure[other]
            closure[task_id] = frozenset(reached)
        return closure

    def needs(self, task_id: str) -> tuple[str, ...]:
        """The tasks `task_id` names in needs, in document order."""
        return self._needs[task_id]

    def dependants(self, task_id: str) -> tuple[str, ...]:
        """The tasks that name `task_id` in their needs."""
        return self._dependants[task_id]

    def upstream(self, task_id: str) -> frozenset[str]:
        """Every task `task_id` needs, directly or through others."""
        return self._upstream[task_id]

    def downstream(self, task_id: str) -> frozenset[str]:
        """Every task that needs `task_id`, directly or through others."""
        return self._downstream[task_id]

    def fallback_of(self, task_id: str) -> str | None:
        """The primary this task is the fallback of, or None."""
        return self._fallback_of.get(task_id)

    def is_fallback(self, task_id: str) -> bool:
        """Whether this task runs only to stand in for a failed primary."""
        return task_id in self._fallback_of
