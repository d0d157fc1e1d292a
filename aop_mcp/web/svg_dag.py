"""A workflow's task graph as a server-rendered SVG string: layered left to right.

Where things go is `dag_layout`'s business (a small Sugiyama-style pass: columns by longest
path, barycenter ordering, long edges routed through lanes between the boxes); this module
turns that into markup. Status colours are the stylesheet's business: each task group carries
`status-{status}`. The only paint written here is neutral presentation attributes, which any
CSS rule overrides.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import KW_ONLY, dataclass
from html import escape
from itertools import pairwise
from typing import Any

from aop_mcp.web.dag_layout import (
    BOX_HEIGHT,
    BOX_WIDTH,
    GAP_X,
    GAP_Y,
    LANE_HEIGHT,
    MARGIN,
    Layout,
    Point,
    layered_layout,
)
from aop_mcp.workflow.document import AgentRun, TaskSpec, WorkflowDocument

__all__ = [
    "BOX_HEIGHT",
    "BOX_WIDTH",
    "GAP_X",
    "GAP_Y",
    "LANE_HEIGHT",
    "MARGIN",
    "DagNode",
    "dag_nodes",
    "dag_svg",
    "status_class",
    "task_element_id",
]

_PAD = 10  # text inset inside a box
_LABEL_CHARS = 20  # what fits in a box at 13px
_DETAIL_CHARS = 25  # ... and at 11px


@dataclass(frozen=True)
class DagNode:
    """One box of the graph: a task, the tasks it needs, and an optional second line.

    `fallback_of` names the primary this task stands in for; it is drawn dashed from the
    primary and placed to its right.
    """

    id: str
    _: KW_ONLY
    depends_on: tuple[str, ...] = ()
    label: str = ""
    detail: str = ""
    fallback_of: str | None = None

    def __post_init__(self) -> None:
        if not self.label:
            object.__setattr__(self, "label", self.id)


def dag_nodes(document: WorkflowDocument | Mapping[str, Any]) -> list[DagNode]:
    """The nodes of a workflow document (parsed, or its stored canonical dict), in task order."""
    if not isinstance(document, WorkflowDocument):
        document = WorkflowDocument.model_validate(document)
    primary_of = {t.fallback: t.id for t in document.tasks if t.fallback is not None}
    return [
        DagNode(
            task.id,
            depends_on=tuple(task.needs),
            detail=_executor_detail(task),
            fallback_of=primary_of.get(task.id),
        )
        for task in document.tasks
    ]


def _executor_detail(task: TaskSpec) -> str:
    run = task.run
    if isinstance(run, AgentRun):
        return f"agent · {run.capability or run.agent}"
    return run.executor


def task_element_id(task_id: str) -> str:
    """The `id` attribute of a task's group: `task-{id}`, other characters encoded as `.hex.`.

    Valid task ids pass through unchanged; anything else becomes a safe, still unique name.
    """
    return "task-" + re.sub(r"[^A-Za-z0-9_-]", lambda m: f".{ord(m[0]):x}.", task_id)


def status_class(status: str) -> str:
    """The CSS class for a status: `status-{status}`, made a safe single class token."""
    token = re.sub(r"[^a-z0-9_-]+", "-", status.lower()).strip("-")
    return f"status-{token or 'none'}"


# --- the graph ----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Graph:
    order: list[str]  # declaration order, duplicates dropped
    nodes: dict[str, DagNode]
    preds: dict[str, list[str]]  # needs, then the primary of a fallback: one edge each


def _graph(nodes: Sequence[DagNode]) -> _Graph:
    by_id: dict[str, DagNode] = {}
    for node in nodes:
        by_id.setdefault(node.id, node)  # the first of a duplicated id wins
    preds = {
        node_id: list(dict.fromkeys([*_needs(node, by_id), *_primary(node, by_id)]))
        for node_id, node in by_id.items()
    }
    return _Graph(list(by_id), by_id, preds)


def _needs(node: DagNode, by_id: Mapping[str, DagNode]) -> list[str]:
    """The known, distinct tasks `node` needs; unknown and self needs are not drawn."""
    return list(dict.fromkeys(d for d in node.depends_on if d in by_id and d != node.id))


def _primary(node: DagNode, by_id: Mapping[str, DagNode]) -> list[str]:
    primary = node.fallback_of
    return [primary] if primary in by_id and primary != node.id else []


# --- rendering ------------------------------------------------------------------------------

_SVG_NS = "http://www.w3.org/2000/svg"
# One arrowhead; `currentColor` follows the colour of the <svg>, so a theme restyles it.
_DEFS = (
    '<defs><marker id="dag-arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="8" '
    'markerHeight="8" markerUnits="userSpaceOnUse" orient="auto-start-reverse">'
    '<path class="arrowhead" d="M0,0 L10,5 L0,10 z" fill="currentColor"/></marker></defs>'
)


def dag_svg(
    nodes: Sequence[DagNode],
    *,
    statuses: Mapping[str, str] | None = None,
    link: Callable[[str], str] | None = None,
    label: str = "task graph",
) -> str:
    """The task graph as an `<svg class="dag">` string, dependencies left of dependants.

    `statuses` maps task id to status; a task missing from it is `pending`, and with no map
    every task is `status-none` (a workflow's definition, not a run). `link(task_id)` gives
    the href each task's box links to. `label` starts the `aria-label`. All text is escaped.
    """
    graph = _graph(nodes)
    if not graph.order:
        return _empty_svg(label)
    layout = layered_layout(graph.order, graph.preds)
    status_of = _statuses(graph.order, statuses)
    parts = [_svg_open(layout, _aria_label(label, graph.order, statuses, status_of)), _DEFS]
    parts += _edges(graph, layout)
    parts += (
        _task(graph.nodes[node_id], layout.boxes[node_id], status_of[node_id], statuses, link)
        for node_id in graph.order
    )
    parts.append("</svg>")
    return "\n".join(parts)


def _statuses(order: list[str], statuses: Mapping[str, str] | None) -> dict[str, str]:
    if statuses is None:
        return dict.fromkeys(order, "none")
    return {node_id: str(statuses.get(node_id, "pending")) for node_id in order}


def _aria_label(
    label: str, order: list[str], statuses: Mapping[str, str] | None, status_of: dict[str, str]
) -> str:
    summary = f"{label}: {_count(len(order), 'task')}"
    if statuses is not None:
        counts = Counter(status_of[node_id] for node_id in order)
        summary += ", " + ", ".join(f"{count} {status}" for status, count in counts.items())
    return summary


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


def _svg_open(layout: Layout, aria: str) -> str:
    width, height = _num(layout.width), _num(layout.height)
    return (
        f'<svg xmlns="{_SVG_NS}" class="dag" role="img" aria-label="{_attr(aria)}" '
        f'viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        'font-family="system-ui, sans-serif">'
    )


def _empty_svg(label: str) -> str:
    width, height = BOX_WIDTH + 2 * MARGIN, BOX_HEIGHT + 2 * MARGIN
    return (
        f'<svg xmlns="{_SVG_NS}" class="dag" role="img" aria-label="{_attr(label)}: no tasks" '
        f'viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        'font-family="system-ui, sans-serif">'
        f'<text class="empty" x="{MARGIN}" y="{MARGIN + BOX_HEIGHT / 2}" font-size="13" '
        'fill="currentColor">no tasks</text></svg>'
    )


def _edges(graph: _Graph, layout: Layout) -> list[str]:
    paths = []
    for node_id in graph.order:
        node = graph.nodes[node_id]
        paths += [_edge(layout, need, node_id, "needs") for need in _needs(node, graph.nodes)]
        paths += [
            _edge(layout, primary, node_id, "fallback") for primary in _primary(node, graph.nodes)
        ]
    return paths


def _edge(layout: Layout, source: str, target: str, kind: str) -> str:
    """One path from the right of `source` to the left of `target`, through the edge's lanes.

    Gaps between columns are crossed by cubics that leave and arrive horizontally, and lanes
    are straight, so the path is smooth; an edge without lanes is a single cubic.
    """
    points = layout.route(source, target)
    d = f"M{_point(points[0])}"
    for step, (start, end) in enumerate(pairwise(points), start=1):
        d += f" C{_handles(start, end)} {_point(end)}" if step % 2 else f" L{_point(end)}"
    fallback = kind == "fallback"
    return (
        f'<path class="edge{" fallback" if fallback else ""}" data-from="{_attr(source)}" '
        f'data-to="{_attr(target)}" data-kind="{kind}" d="{d}" fill="none" '
        f'stroke="currentColor"{' stroke-dasharray="6 4"' if fallback else ""} '
        'marker-end="url(#dag-arrow)"/>'
    )


def _handles(start: Point, end: Point) -> str:
    """The control points of a cubic that leaves `start` and reaches `end` horizontally."""
    bend = max(abs(end[0] - start[0]) / 2, GAP_X / 2)
    return f"{_point((start[0] + bend, start[1]))} {_point((end[0] - bend, end[1]))}"


def _point(point: Point) -> str:
    return f"{_num(point[0])},{_num(point[1])}"


def _task(
    node: DagNode,
    corner: tuple[float, float],
    status: str,
    statuses: Mapping[str, str] | None,
    link: Callable[[str], str] | None,
) -> str:
    x, y = corner
    second = [part for part in (node.detail, status if statuses is not None else "") if part]
    tooltip = "\n".join([node.id, *([node.label] if node.label != node.id else []), *second])
    group = (
        f'<g class="task {status_class(status)}" id="{_attr(task_element_id(node.id))}" '
        f'data-task="{_attr(node.id)}" data-status="{_attr(status)}">'
        f"<title>{_text(tooltip)}</title>"
        f'<rect class="box" x="{_num(x)}" y="{_num(y)}" width="{BOX_WIDTH}" '
        f'height="{BOX_HEIGHT}" rx="6" fill="none" stroke="currentColor" pointer-events="all"/>'
        f'<text class="label" x="{_num(x + _PAD)}" y="{_num(y + 20)}" font-size="13" '
        f'fill="currentColor">{_text(_truncate(node.label, _LABEL_CHARS))}</text>'
        f'<text class="detail" x="{_num(x + _PAD)}" y="{_num(y + 37)}" font-size="11" '
        f'fill="currentColor">{_text(_truncate(" · ".join(second), _DETAIL_CHARS))}</text>'
        "</g>"
    )
    if link is None:
        return group
    return f'<a class="task-link" href="{_attr(link(node.id))}">{group}</a>'


def _truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


# Characters XML 1.0 cannot carry even as references; they become U+FFFD.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")
# Whitespace a parser would fold to a space inside an attribute, kept as references.
_ATTR_SPACE = {"\t": "&#9;", "\n": "&#10;", "\r": "&#13;"}


def _text(value: str) -> str:
    return escape(_NOT_XML.sub("\ufffd", value), quote=False).replace("\r", "&#13;")


def _attr(value: str) -> str:
    escaped = escape(_NOT_XML.sub("\ufffd", value), quote=True)
    return re.sub("[\t\n\r]", lambda m: _ATTR_SPACE[m[0]], escaped)


def _num(value: float) -> str:
    """A coordinate with at most two decimals and no trailing zeros."""
    return f"{value:.2f}".rstrip("0").rstrip(".")
