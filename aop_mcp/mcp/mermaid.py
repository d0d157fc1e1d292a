"""A run's task graph as Mermaid `flowchart` text: one node per task, coloured by status."""

from __future__ import annotations

from typing import Any

from aop_mcp.models import TaskRun, TaskStatus

#: Fill and stroke per task status (colour-blind friendly enough, and readable in dark mode).
_STYLES: dict[TaskStatus, str] = {
    TaskStatus.PENDING: "fill:#f4f4f5,stroke:#a1a1aa,color:#27272a",
    TaskStatus.READY: "fill:#e0f2fe,stroke:#0284c7,color:#0c4a6e",
    TaskStatus.RUNNING: "fill:#fef9c3,stroke:#ca8a04,color:#713f12",
    TaskStatus.SUCCEEDED: "fill:#dcfce7,stroke:#16a34a,color:#14532d",
    TaskStatus.FAILED: "fill:#fee2e2,stroke:#dc2626,color:#7f1d1d",
    TaskStatus.SKIPPED: "fill:#f4f4f5,stroke:#71717a,color:#3f3f46,stroke-dasharray:4",
    TaskStatus.CANCELLED: "fill:#ede9fe,stroke:#7c3aed,color:#4c1d95",
}


def run_flowchart(document: dict[str, Any], tasks: list[TaskRun]) -> str:
    """Mermaid text: nodes `task id / status`, edges from needs, dotted edges to fallbacks."""
    status = {t.task_id: t.status for t in tasks}
    specs = document.get("tasks", [])
    node = {spec["id"]: f"t{index}" for index, spec in enumerate(specs)}
    lines = ["flowchart TD"]
    for spec in specs:
        task_id = spec["id"]
        state = status.get(task_id, TaskStatus.PENDING)
        # Task ids are letters, digits, _ and -: safe inside a quoted label.
        lines.append(f'    {node[task_id]}["{task_id}<br/>{state}"]:::{state}')
    for spec in specs:
        lines += [f"    {node[need]} --> {node[spec['id']]}" for need in spec.get("needs", [])]
        if spec.get("fallback") in node:
            lines.append(f"    {node[spec['id']]} -.->|fallback| {node[spec['fallback']]}")
    lines += [f"    classDef {state} {style}" for state, style in _STYLES.items()]
    return "\n".join(lines) + "\n"
