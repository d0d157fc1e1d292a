"""Where the boxes and edges of a task graph go: a small Sugiyama-style layered layout.

A task's layer is its longest path from a task with no needs; layers are columns, left to
right. An edge spanning more than one layer gets a virtual node in every layer it crosses: a
12px lane, not a 48px box. Lanes join the barycenter sweeps that order each layer, so boxes
make room for them, and the edge is drawn through its lanes rather than behind the boxes.

Every step is linear or n-log-n in tasks, edges and lanes, and lanes are capped: a dense graph
(each of 200 tasks needing every earlier one: 19,900 edges) would want ~1.3 million of them,
seconds of work and a picture metres tall. Edges get lanes shortest first while they fit in
`_MAX_LANES`; longer ones are drawn as one direct curve, which may cross boxes.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise

BOX_WIDTH = 168
BOX_HEIGHT = 48
GAP_X = 56
GAP_Y = 20
MARGIN = 16
LANE_HEIGHT = 12  # the band a long edge takes in each layer it crosses
_BOX_PITCH = BOX_HEIGHT + GAP_Y  # a box owns half a gap above and below it; a lane owns none
_MAX_LANES = 1_000
_SWEEPS = 2

Point = tuple[float, float]


@dataclass(frozen=True)
class Layout:
    boxes: dict[str, Point]  # top-left corner per task
    lanes: dict[tuple[str, str], list[Point]]  # per routed edge, the left end of each lane
    width: float
    height: float

    def route(self, source: str, target: str) -> list[Point]:
        """Where the edge `source -> target` runs horizontally, in order.

        It leaves the middle of the right side of `source`, runs along each of its lanes (left
        end, then right end) and enters the middle of the left side of `target`. So the odd
        steps (first, third, ...) cross the gap between two columns, and the even ones run
        straight along a lane, inside a column but clear of its boxes.
        """
        left, top = self.boxes[source]
        points = [(left + BOX_WIDTH, top + BOX_HEIGHT / 2)]
        for left, y in self.lanes.get((source, target), ()):
            points += [(left, y), (left + BOX_WIDTH, y)]
        left, top = self.boxes[target]
        points.append((left, top + BOX_HEIGHT / 2))
        return points


def layered_layout(order: Sequence[str], needs: Mapping[str, Sequence[str]]) -> Layout:
    """Lay out the tasks `order` (distinct, in declaration order), with an edge into each task
    from each of its `needs` (tasks in `order`, not itself). A cycle is drawn, not refused."""
    index = {task: number for number, task in enumerate(order)}
    preds = [[index[need] for need in needs[task]] for task in order]
    layer_of = _layers(preds)
    # Items 0..len(order)-1 are the tasks; after them come the lanes, each in one layer.
    item_layer = list(layer_of)
    chains: dict[tuple[int, int], range] = {}
    for source, target in _long_edges(preds, layer_of):
        first = len(item_layer)
        item_layer += range(layer_of[source] + 1, layer_of[target])
        chains[source, target] = range(first, len(item_layer))
    up: list[list[int]] = [[] for _ in item_layer]
    down: list[list[int]] = [[] for _ in item_layer]
    for target, sources in enumerate(preds):
        for source in sources:
            for left, right in pairwise([source, *chains.get((source, target), ()), target]):
                up[right].append(left)
                down[left].append(right)
    pitch = [_BOX_PITCH] * len(order) + [LANE_HEIGHT] * (len(item_layer) - len(order))
    columns = _ordered_columns(item_layer, up, down, pitch)
    return _place(order, columns, pitch, chains)


def _layers(preds: list[list[int]]) -> list[int]:
    """Longest path from a root, by Kahn's algorithm; a cycle is broken at its earliest task."""
    succs: list[list[int]] = [[] for _ in preds]
    for target, sources in enumerate(preds):
        for source in sources:
            succs[source].append(target)
    waiting = [len(sources) for sources in preds]
    layer = [0] * len(preds)
    ready = deque(task for task, count in enumerate(waiting) if count == 0)
    done = [False] * len(preds)
    unfinished = iter(range(len(preds)))
    for _ in preds:
        if not ready:
            # Only a cycle gets here (dag_svg accepts any nodes): release its first task.
            victim = next(task for task in unfinished if not done[task])
            waiting[victim] = 0
            ready.append(victim)
        task = ready.popleft()
        done[task] = True
        for succ in succs[task]:
            if done[succ]:
                continue
            layer[succ] = max(layer[succ], layer[task] + 1)
            waiting[succ] -= 1
            if waiting[succ] == 0:
                ready.append(succ)
    return layer


def _long_edges(preds: list[list[int]], layer_of: list[int]) -> list[tuple[int, int]]:
    """The edges that get lanes: those spanning more than one layer, shortest first, for as long
    as their lanes fit in `_MAX_LANES`. Ties keep declaration order."""
    edges = [(source, target) for target, sources in enumerate(preds) for source in sources]
    spans = sorted(
        (layer_of[target] - layer_of[source], number)
        for number, (source, target) in enumerate(edges)
        if layer_of[target] - layer_of[source] > 1
    )
    routed, lanes = [], 0
    for span, number in spans:
        lanes += span - 1
        if lanes > _MAX_LANES:
            break  # the rest are at least as long
        routed.append(edges[number])
    return routed


def _ordered_columns(
    item_layer: list[int], up: list[list[int]], down: list[list[int]], pitch: list[int]
) -> list[list[int]]:
    """Items per layer, ordered by barycenter sweeps; ties keep declaration order."""
    columns: list[list[int]] = [[] for _ in range(max(item_layer, default=-1) + 1)]
    for item, layer in enumerate(item_layer):
        columns[layer].append(item)
    # Offsets from the middle of the column, in pixels: compared as the picture shows them.
    position = [0.0] * len(item_layer)
    for column in columns:
        _stack(column, pitch, position)
    for _ in range(_SWEEPS):
        for column in columns[1:]:
            _sort(column, up, pitch, position)
        for column in reversed(columns[:-1]):
            _sort(column, down, pitch, position)
    return columns


def _stack(column: list[int], pitch: list[int], position: list[float]) -> None:
    y = -sum(pitch[item] for item in column) / 2
    for item in column:
        position[item] = y + pitch[item] / 2
        y += pitch[item]


def _sort(
    column: list[int], neighbours: list[list[int]], pitch: list[int], position: list[float]
) -> None:
    def barycenter(item: int) -> float:
        linked = neighbours[item]
        if not linked:
            return position[item]  # nothing pulls it: it stays where it is
        return sum(position[other] for other in linked) / len(linked)

    column.sort(key=barycenter)  # sort is stable: equal barycenters keep their order
    _stack(column, pitch, position)


def _place(
    order: Sequence[str],
    columns: list[list[int]],
    pitch: list[int],
    chains: dict[tuple[int, int], range],
) -> Layout:
    """Columns side by side, each centred on the tallest; a box sits inside its pitch."""
    heights = [sum(pitch[item] for item in column) for column in columns]
    tallest = max(heights, default=0)
    corner: list[Point] = [(0.0, 0.0)] * len(pitch)
    for number, column in enumerate(columns):
        x = MARGIN + number * (BOX_WIDTH + GAP_X)
        y = MARGIN - GAP_Y / 2 + (tallest - heights[number]) / 2
        for item in column:
            corner[item] = (x, y)
            y += pitch[item]
    boxes = {
        task: (corner[item][0], corner[item][1] + GAP_Y / 2) for item, task in enumerate(order)
    }
    lanes = {
        (order[source], order[target]): [
            (corner[lane][0], corner[lane][1] + LANE_HEIGHT / 2) for lane in chain
        ]
        for (source, target), chain in chains.items()
    }
    width = 2 * MARGIN + len(columns) * BOX_WIDTH + max(len(columns) - 1, 0) * GAP_X
    return Layout(boxes, lanes, width, 2 * MARGIN + max(tallest - GAP_Y, 0))
