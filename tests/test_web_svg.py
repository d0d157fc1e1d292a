"""The dashboard's server-rendered pictures: a workflow's task graph and the throughput chart."""

from __future__ import annotations

import re
import time
import xml.etree.ElementTree as ET

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aop_mcp.web.svg_chart import ThroughputBucket, throughput_svg
from aop_mcp.web.svg_dag import BOX_HEIGHT, BOX_WIDTH, DagNode, dag_nodes, dag_svg
from aop_mcp.workflow import parse_workflow

NS = {"svg": "http://www.w3.org/2000/svg"}


def parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)  # raises on anything that is not well-formed XML


def groups(root: ET.Element) -> dict[str, ET.Element]:
    return {g.get("data-task", ""): g for g in root.iter(f"{{{NS['svg']}}}g")}


def box(group: ET.Element) -> tuple[float, float]:
    rect = group.find("svg:rect", NS)
    assert rect is not None
    return float(rect.get("x", "nan")), float(rect.get("y", "nan"))


def edges(root: ET.Element, kind: str = "needs") -> list[tuple[str, str]]:
    return [
        (path.get("data-from", ""), path.get("data-to", ""))
        for path in root.iter(f"{{{NS['svg']}}}path")
        if "edge" in path.get("class", "").split() and path.get("data-kind") == kind
    ]


def along(d: str, steps: int = 24) -> list[tuple[float, float]]:
    """Points along a path of `M`, `C` and `L` commands: each segment sampled at `steps` t's."""
    tokens = re.findall(r"[A-Za-z]|-?[0-9.]+", d)
    points: list[tuple[float, float]] = []
    here = (0.0, 0.0)
    while tokens:
        command = tokens.pop(0)
        size = {"M": 2, "L": 2, "C": 6}[command]
        values = [float(v) for v in tokens[:size]]
        del tokens[:size]
        ends = [here, *zip(values[::2], values[1::2], strict=True)]
        if command == "L":
            ends = [here, here, ends[1], ends[1]]  # a line is a cubic with its handles on it
        if command != "M":
            points += [_bezier(ends, step / steps) for step in range(steps + 1)]
        here = ends[-1]
    return points


def _bezier(ends: list[tuple[float, float]], t: float) -> tuple[float, float]:
    weights = ((1 - t) ** 3, 3 * (1 - t) ** 2 * t, 3 * (1 - t) * t**2, t**3)
    return (
        sum(w * x for w, (x, _) in zip(weights, ends, strict=True)),
        sum(w * y for w, (_, y) in zip(weights, ends, strict=True)),
    )


def edges_through_boxes(root: ET.Element) -> list[str]:
    """Every edge point inside a box (2px in from its border) other than the edge's own ends."""
    corners = {name: box(g) for name, g in groups(root).items()}
    found = []
    for path in root.iter(f"{{{NS['svg']}}}path"):
        if "edge" not in path.get("class", "").split():
            continue
        ends = {path.get("data-from"), path.get("data-to")}
        for x, y in along(path.get("d", "")):
            found += [
                f"{sorted(ends)} passes through {name} at ({x:.1f}, {y:.1f})"
                for name, (left, top) in corners.items()
                if name not in ends
                and left + 2 < x < left + BOX_WIDTH - 2
                and top + 2 < y < top + BOX_HEIGHT - 2
            ]
    return found


def chain(*ids: str) -> list[DagNode]:
    return [DagNode(i, depends_on=(ids[n - 1],) if n else ()) for n, i in enumerate(ids)]


DIAMOND = [
    DagNode("a"),
    DagNode("b", depends_on=("a",)),
    DagNode("c", depends_on=("a",)),
    DagNode("d", depends_on=("b", "c")),
]
# lint is in layer 1 and publish in layer 3: lint -> publish spans the layer test is in.
TAILED = [
    DagNode("fetch"),
    DagNode("lint", depends_on=("fetch",)),
    DagNode("build", depends_on=("fetch",)),
    DagNode("test", depends_on=("build",)),
    DagNode("publish", depends_on=("lint", "test")),
]


# --- the task graph -------------------------------------------------------------------------


def test_every_task_is_one_group_with_its_status_class() -> None:
    statuses = {"a": "succeeded", "b": "running", "c": "failed"}
    root = parse(dag_svg(DIAMOND, statuses=statuses))
    found = groups(root)
    assert sorted(found) == ["a", "b", "c", "d"]
    assert found["a"].get("class") == "task status-succeeded"
    assert found["b"].get("data-status") == "running"
    assert found["c"].get("id") == "task-c"
    assert found["d"].get("class") == "task status-pending"  # not in the map: not started


def test_a_workflow_definition_has_no_statuses() -> None:
    root = parse(dag_svg(DIAMOND))
    assert {g.get("class") for g in groups(root).values()} == {"task status-none"}


def test_unknown_status_strings_still_give_a_safe_class() -> None:
    root = parse(dag_svg(chain("a"), statuses={"a": 'Weird "state" <x>'}))
    group = groups(root)["a"]
    assert group.get("data-status") == 'Weird "state" <x>'
    assert group.get("class") == "task status-weird-state-x"


def test_dependencies_sit_left_of_their_dependants_with_one_edge_each() -> None:
    root = parse(dag_svg(DIAMOND))
    found = groups(root)
    pairs = [(need, node.id) for node in DIAMOND for need in node.depends_on]
    assert sorted(edges(root)) == sorted(pairs)
    for need, dependant in pairs:
        assert box(found[need])[0] + BOX_WIDTH < box(found[dependant])[0]


def test_the_middle_tasks_of_a_diamond_share_a_layer() -> None:
    found = groups(parse(dag_svg(DIAMOND)))
    assert box(found["b"])[0] == box(found["c"])[0]
    assert box(found["b"])[1] != box(found["c"])[1]


def test_one_task_a_chain_and_a_wide_fan_out_render() -> None:
    assert list(groups(parse(dag_svg(chain("only"))))) == ["only"]
    xs = [box(g)[0] for g in groups(parse(dag_svg(chain("a", "b", "c", "d")))).values()]
    assert xs == sorted(xs)
    assert len(set(xs)) == 4
    fan = [DagNode("root"), *(DagNode(f"leaf{i}", depends_on=("root",)) for i in range(50))]
    root = parse(dag_svg(fan))
    assert len(groups(root)) == 51
    assert len({box(g)[0] for name, g in groups(root).items() if name != "root"}) == 1
    assert float(root.get("height", "0")) >= 50 * BOX_HEIGHT


def test_the_picture_is_sized_and_labelled_for_screen_readers() -> None:
    root = parse(dag_svg(DIAMOND, statuses={"a": "succeeded"}))
    assert root.get("class") == "dag"
    assert root.get("role") == "img"
    assert root.get("aria-label") == "task graph: 4 tasks, 1 succeeded, 3 pending"
    width, height = float(root.get("width", "0")), float(root.get("height", "0"))
    assert root.get("viewBox") == f"0 0 {width:g} {height:g}"
    assert width < 1280  # three layers fit the dashboard without scrolling


def test_hostile_task_ids_are_escaped_and_read_back_intact() -> None:
    hostile = "a<b&\"c'"
    nodes = [DagNode("start"), DagNode(hostile, depends_on=("start",), detail="<script>")]
    svg = dag_svg(nodes, statuses={hostile: "running"}, link=lambda i: f"/runs/1/tasks/{i}")
    assert "<script>" not in svg
    assert "<b&" not in svg
    root = parse(svg)
    group = groups(root)[hostile]
    assert all(ch not in (group.get("id") or "") for ch in "<&\"' ")
    assert group.findtext("svg:title", namespaces=NS).startswith(hostile)
    assert edges(root) == [("start", hostile)]
    link = next(a for a in root.iter(f"{{{NS['svg']}}}a") if a.find("svg:g", NS) is group)
    assert link.get("href") == f"/runs/1/tasks/{hostile}"


def test_long_labels_are_truncated_with_the_full_id_in_the_tooltip() -> None:
    long_id = "summarize_every_commit_of_the_last_year"
    group = groups(parse(dag_svg(chain(long_id))))[long_id]
    label = group.findtext("svg:text[@class='label']", namespaces=NS)
    assert label is not None
    assert label.endswith("…")
    assert len(label) < len(long_id)
    assert long_id.startswith(label[:-1])
    assert group.findtext("svg:title", namespaces=NS).splitlines()[0] == long_id


def test_links_wrap_each_task_group_when_given() -> None:
    root = parse(dag_svg(DIAMOND, link=lambda i: f"/tasks/{i}"))
    links = {a.get("href"): a.find("svg:g", NS) for a in root.iter(f"{{{NS['svg']}}}a")}
    assert {href: g.get("data-task") for href, g in links.items()} == {
        f"/tasks/{i}": i for i in "abcd"
    }
    assert not list(parse(dag_svg(DIAMOND)).iter(f"{{{NS['svg']}}}a"))


def test_a_workflow_document_becomes_nodes_with_fallbacks_drawn_dashed() -> None:
    document = parse_workflow(
        {
            "name": "summarize-repo",
            "tasks": [
                {"id": "fetch", "run": {"executor": "local", "command": ["git", "log"]}},
                {
                    "id": "summarize",
                    "needs": ["fetch"],
                    "fallback": "summarize-cheap",
                    "run": {"executor": "agent", "capability": "summarize", "input": "x"},
                },
                {
                    "id": "summarize-cheap",
                    "run": {"executor": "python", "function": "json:dumps"},
                },
            ],
        }
    )
    nodes = dag_nodes(document)
    assert [n.id for n in nodes] == ["fetch", "summarize", "summarize-cheap"]
    assert nodes[1].detail == "agent · summarize"
    assert nodes[2].fallback_of == "summarize"
    assert dag_nodes(document.canonical()) == nodes  # the stored form gives the same nodes
    root = parse(dag_svg(nodes))
    assert edges(root, "fallback") == [("summarize", "summarize-cheap")]
    dashed = [p for p in root.iter(f"{{{NS['svg']}}}path") if p.get("data-kind") == "fallback"]
    assert dashed[0].get("class") == "edge fallback"
    assert dashed[0].get("stroke-dasharray")
    found = groups(root)
    assert box(found["summarize"])[0] < box(found["summarize-cheap"])[0]


def test_tasks_in_a_layer_are_ordered_so_parallel_chains_do_not_cross() -> None:
    nodes = [
        DagNode("a1"),
        DagNode("a2"),
        DagNode("b2", depends_on=("a2",)),  # declared first, but a2 is below a1
        DagNode("b1", depends_on=("a1",)),
    ]
    found = groups(parse(dag_svg(nodes)))
    assert box(found["a1"])[1] < box(found["a2"])[1]
    assert box(found["b1"])[1] < box(found["b2"])[1]


def test_unknown_needs_duplicates_and_cycles_do_not_break_the_picture() -> None:
    nodes = [
        DagNode("a", depends_on=("b", "ghost", "a")),
        DagNode("b", depends_on=("a",)),
        DagNode("a", label="duplicate"),
    ]
    root = parse(dag_svg(nodes))
    assert sorted(groups(root)) == ["a", "b"]
    assert sorted(edges(root)) == [("a", "b"), ("b", "a")]
    assert parse(dag_svg([])).get("aria-label") == "task graph: no tasks"


def test_a_200_task_workflow_renders_quickly() -> None:
    nodes = [
        DagNode(f"t{i}", depends_on=tuple(f"t{j}" for j in (i - 1, i // 2, i - 7) if 0 <= j < i))
        for i in range(200)
    ]
    started = time.perf_counter()
    root = parse(dag_svg(nodes, statuses={"t0": "succeeded"}))
    assert time.perf_counter() - started < 0.5
    assert len(groups(root)) == 200


@pytest.mark.parametrize(
    "nodes",
    [
        TAILED,
        TAILED[::-1],
        [*TAILED, DagNode("publish-cheap", depends_on=("test",), fallback_of="lint")],
    ],
    ids=["declared-in-order", "declared-backwards", "with-a-long-fallback"],
)
def test_an_edge_spanning_layers_goes_around_the_boxes_between(nodes: list[DagNode]) -> None:
    root = parse(dag_svg(nodes))
    pairs = [(need, node.id) for node in nodes for need in node.depends_on]
    assert sorted(edges(root)) == sorted(pairs)  # still one path per dependency, real ends
    assert edges_through_boxes(root) == []
    found = groups(root)
    assert box(found["lint"])[0] < box(found["test"])[0] < box(found["publish"])[0]


def test_a_long_edge_takes_a_lane_not_a_box_worth_of_height() -> None:
    nodes = [*chain("a", "b", "c", "d"), DagNode("e", depends_on=("a", "d"))]
    root = parse(dag_svg(nodes))
    assert edges_through_boxes(root) == []
    assert float(root.get("height", "0")) < 2 * BOX_HEIGHT + 32  # one box and a lane


def test_a_dense_200_task_workflow_still_renders_quickly() -> None:
    nodes = [DagNode(f"t{i}", depends_on=tuple(f"t{j}" for j in range(i))) for i in range(200)]
    started = time.perf_counter()
    svg = dag_svg(nodes)
    assert time.perf_counter() - started < 2.0  # lanes are capped: the long edges go straight
    root = parse(svg)
    assert len(edges(root)) == 200 * 199 // 2
    assert len(groups(root)) == 200


@st.composite
def random_dags(draw: st.DrawFn) -> list[DagNode]:
    size = draw(st.integers(min_value=1, max_value=25))
    nodes = []
    for index in range(size):
        earlier = st.sampled_from(range(index)) if index else st.nothing()
        needs = draw(st.lists(earlier, max_size=3, unique=True)) if index else []
        nodes.append(DagNode(f"n{index}", depends_on=tuple(f"n{j}" for j in needs)))
    return draw(st.permutations(nodes))  # declaration order need not be topological


@settings(max_examples=75, deadline=None)
@given(random_dags())
def test_edges_run_left_to_right_and_boxes_never_overlap(nodes: list[DagNode]) -> None:
    root = parse(dag_svg(nodes))
    corners = {name: box(g) for name, g in groups(root).items()}
    assert len(corners) == len(nodes)
    for source, target in edges(root):
        assert corners[source][0] + BOX_WIDTH < corners[target][0]
    placed = sorted(corners.values())
    for i, (x1, y1) in enumerate(placed):
        for x2, y2 in placed[i + 1 :]:
            apart = x2 >= x1 + BOX_WIDTH or abs(y2 - y1) >= BOX_HEIGHT
            assert apart, f"boxes at {(x1, y1)} and {(x2, y2)} overlap"
    width, height = float(root.get("width", "0")), float(root.get("height", "0"))
    assert all(x + BOX_WIDTH <= width and y + BOX_HEIGHT <= height for x, y in placed)


@st.composite
def random_dags_with_fallbacks(draw: st.DrawFn) -> list[DagNode]:
    size = draw(st.integers(min_value=1, max_value=15))
    nodes = []
    for index in range(size):
        earlier = st.sampled_from([f"n{j}" for j in range(index)]) if index else st.nothing()
        needs = draw(st.lists(earlier, max_size=4, unique=True)) if index else []
        primary = draw(st.none() | earlier) if index and draw(st.integers(0, 4)) == 0 else None
        nodes.append(DagNode(f"n{index}", depends_on=tuple(needs), fallback_of=primary))
    return draw(st.permutations(nodes))


@settings(max_examples=100, deadline=None)
@given(random_dags_with_fallbacks())
def test_no_edge_passes_through_a_box_it_does_not_join(nodes: list[DagNode]) -> None:
    svg = dag_svg(nodes)
    assert dag_svg(nodes) == svg  # deterministic
    root = parse(svg)
    assert edges_through_boxes(root) == []
    placed = sorted(box(g) for g in groups(root).values())
    for i, (x1, y1) in enumerate(placed):
        for x2, y2 in placed[i + 1 :]:
            assert x2 >= x1 + BOX_WIDTH or abs(y2 - y1) >= BOX_HEIGHT + 2


# --- the throughput chart -------------------------------------------------------------------

NOW = 1_700_000_000.0


def bars(root: ET.Element) -> list[ET.Element]:
    return [r for r in root.iter(f"{{{NS['svg']}}}rect") if r.get("class") == "bar"]


def label(root: ET.Element, kind: str) -> str | None:
    for text in root.iter(f"{{{NS['svg']}}}text"):
        if kind in text.get("class", "").split():
            return text.text
    return None


def test_bar_heights_are_proportional_to_the_rate_and_the_peak_is_labelled() -> None:
    counts = [10, 0, 125, 50]
    buckets = [ThroughputBucket(NOW - 40 + 10 * i, n) for i, n in enumerate(counts)]
    root = parse(throughput_svg(buckets, bucket_seconds=10, now=NOW))
    drawn = bars(root)
    heights = [float(b.get("height", "nan")) for b in drawn]
    for count, height in zip(counts, heights, strict=True):
        assert abs(height - heights[2] * count / 125) < 0.02
    assert label(root, "y-max") == "12.5/s"
    assert (
        root.get("aria-label") == "tasks finished per second over the last 40 seconds, peak 12.5/s"
    )
    assert drawn[2].findtext("svg:title", namespaces=NS).startswith("12.5/s: 125 finished")
    xs = [float(b.get("x", "nan")) for b in drawn]
    assert xs == sorted(xs)  # oldest on the left


def test_time_labels_span_the_window_and_missing_buckets_are_gaps() -> None:
    buckets = [(NOW - 600, 3), (NOW - 60, 6)]  # plain tuples, out of a SQL GROUP BY
    root = parse(throughput_svg(buckets, bucket_seconds=60, now=NOW, window_seconds=600))
    assert (label(root, "x-start"), label(root, "x-end")) == ("-10m", "now")
    assert "over the last 10 minutes, peak 0.1/s" in (root.get("aria-label") or "")
    first, last = bars(root)
    assert float(last.get("x", "0")) - float(first.get("x", "0")) > 300


def test_no_finished_tasks_draws_a_flat_chart_that_says_so() -> None:
    for buckets in ([], [(NOW - 60, 0), (NOW - 30, 0)]):
        svg = throughput_svg(buckets, bucket_seconds=30, now=NOW, window_seconds=600)
        root = parse(svg)
        assert label(root, "empty") == "no tasks finished"
        assert label(root, "y-max") is None
        assert all(float(b.get("height", "1")) == 0 for b in bars(root))
        assert root.get("class") == "chart"
        assert root.get("role") == "img"
        assert root.get("aria-label", "").endswith(": no tasks finished")
