"""Output of the CLI: JSON for scripts, tables and progress lines for people."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import fields, is_dataclass
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from aop_mcp.models import DeadLetter, Event, Run, TaskRun, TaskStatus, Token

if TYPE_CHECKING:  # cryptography loads only for the commands that use secrets
    from aop_mcp.security.secrets import SecretInfo

_SHORT = 60  # characters of an error or output shown in a table cell


def to_json(value: Any) -> Any:
    """A record as plain JSON data: dataclasses become dicts, enums their values."""
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_json(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, dict):
        return {str(key): to_json(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [to_json(item) for item in value]
    if isinstance(value, Path):
        return str(value)
    return value


def run_json(run: Run, tasks: Sequence[TaskRun]) -> dict[str, Any]:
    """A run with every field, and `tasks`: its task runs with every field."""
    return {**to_json(run), "tasks": [to_json(task) for task in tasks]}


def print_json(data: Any, out: TextIO) -> None:
    """Pretty JSON on `out`, one document per command."""
    out.write(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")


# --- tables ---------------------------------------------------------------------------------


def table(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """Left-aligned columns separated by two spaces; trailing blanks trimmed."""
    grid = [list(headers), *(list(row) for row in rows)]
    widths = [max(len(row[i]) for row in grid) for i in range(len(headers))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in grid
    )


def seconds(value: float | None) -> str:
    """A duration a person reads at a glance: 0.2s, 12.4s, 3m05s."""
    if value is None:
        return "-"
    if value < 1:
        return f"{value:.2f}s"
    if value < 60:
        return f"{value:.1f}s"
    minutes, rest = divmod(round(value), 60)
    return f"{minutes}m{rest:02d}s"


def _span(start: float | None, end: float | None) -> float | None:
    return end - start if start is not None and end is not None else None


def when(at: float | None) -> str:
    """A timestamp in local time."""
    return "-" if at is None else time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(at))


def short(text: str | None, limit: int = _SHORT) -> str:
    """The first line of `text`, cut to `limit` characters."""
    first = (text or "").strip().splitlines()[0] if (text or "").strip() else ""
    return first if len(first) <= limit else first[: limit - 1] + "…"


def task_note(task: TaskRun) -> str:
    """Why a task ended as it did, in a few words: its error, skip reason or stand-in."""
    if task.cached:
        return "cached"
    if task.recovered_by is not None:
        return f"recovered by {task.recovered_by!r}"
    if task.status is TaskStatus.SKIPPED:
        return short(task.skip_reason)
    if task.error is not None and task.status is not TaskStatus.SUCCEEDED:
        return short(task.error.message)
    return ""


def run_summary(run: Run, tasks: Sequence[TaskRun]) -> str:
    """A header line about the run, then one row per task."""
    took = seconds(_span(run.started_at, run.finished_at))
    header = f"run {run.id} ({run.workflow} v{run.workflow_version}): {run.status} in {took}"
    rows = [
        (
            t.task_id,
            str(t.status),
            str(t.attempts),
            seconds(_span(t.started_at, t.finished_at)),
            task_note(t),
        )
        for t in tasks
    ]
    lines = [header, table(("TASK", "STATUS", "ATTEMPTS", "DURATION", "NOTE"), rows)]
    if run.error and run.status != "succeeded":
        lines.append(f"error: {run.error}")
    return "\n".join(lines)


def task_outputs(tasks: Sequence[TaskRun]) -> str:
    """Each task's captured stdout (and stderr of failed ones), indented under its id."""
    blocks = []
    for task in tasks:
        if task.output is None:
            continue
        text = task.output.stdout
        if task.status is not TaskStatus.SUCCEEDED and task.output.stderr:
            text += task.output.stderr
        body = "\n".join("  " + line for line in text.rstrip("\n").splitlines()) or "  (empty)"
        blocks.append(f"{task.task_id}:\n{body}")
    return "\n".join(blocks)


def runs_table(runs: Sequence[Run]) -> str:
    """`aop runs list`."""
    rows = [
        (
            r.id,
            f"{r.workflow} v{r.workflow_version}",
            str(r.status),
            when(r.created_at),
            seconds(_span(r.started_at, r.finished_at)),
        )
        for r in runs
    ]
    return table(("RUN", "WORKFLOW", "STATUS", "CREATED", "DURATION"), rows)


def dead_letters_table(letters: Sequence[DeadLetter]) -> str:
    """`aop dlq list`."""
    rows = [
        (d.id, d.run_id, d.task_id, str(d.attempts), when(d.created_at), short(d.error.message))
        for d in letters
    ]
    return table(("ID", "RUN", "TASK", "ATTEMPTS", "CREATED", "ERROR"), rows)


def token_json(token: Token) -> dict[str, Any]:
    """A token without its hash: listings have no use for it."""
    return {
        "id": token.id,
        "name": token.name,
        "role": token.role,
        "created_at": token.created_at,
        "last_used_at": token.last_used_at,
        "revoked_at": token.revoked_at,
    }


def tokens_table(tokens: Sequence[Token]) -> str:
    """`aop token list`."""
    rows = [
        (
            t.id,
            t.name,
            t.role,
            when(t.created_at),
            when(t.last_used_at),
            "active" if t.revoked_at is None else f"revoked {when(t.revoked_at)}",
        )
        for t in tokens
    ]
    return table(("ID", "NAME", "ROLE", "CREATED", "LAST USED", "STATUS"), rows)


def secret_json(secret: SecretInfo) -> dict[str, Any]:
    """A secret as listings show it: never its value."""
    return {
        "name": secret.name,
        "version": secret.version,
        "created_at": secret.created_at,
        "updated_at": secret.updated_at,
    }


def secrets_table(secrets: Sequence[SecretInfo]) -> str:
    """`aop secret list`."""
    rows = [(s.name, str(s.version), when(s.created_at), when(s.updated_at)) for s in secrets]
    return table(("NAME", "VERSION", "CREATED", "UPDATED"), rows)


# --- live progress ----------------------------------------------------------------------------


class ProgressLines:
    """Turns a run's events into one line per task event (`✓ fetch (0.2s)`)."""

    def __init__(self) -> None:
        self._started: dict[str, float] = {}

    def line(self, event: Event) -> str | None:
        """The line for `event`, or None for events not worth a line."""
        if event.task_id is None:
            return None
        formatter = _FORMATTERS.get(event.type)
        if formatter is None:
            return None
        if event.type == "task.started":
            self._started[event.task_id] = event.at  # the latest attempt's start
        return formatter(event, self._started.get(event.task_id))


def _started(event: Event, _: float | None) -> str:
    attempt = event.data.get("attempt", 1)
    again = f" (attempt {attempt})" if attempt > 1 else ""
    return f"▸ {event.task_id}{again}"


def _succeeded(event: Event, started: float | None) -> str:
    took = seconds(_span(started, event.at))
    cached = ", cached" if event.data.get("cached") else ""
    return f"✓ {event.task_id} ({took}{cached})"


def _retrying(event: Event, _: float | None) -> str:
    delay = max(0.0, float(event.data.get("at", event.at)) - event.at)
    return f"✗ {event.task_id}: {short(event.data.get('message'))} — retrying in {delay:.1f}s"


def _failed(event: Event, _: float | None) -> str:
    return f"✗ {event.task_id}: {short(event.data.get('message'))}"


def _skipped(event: Event, _: float | None) -> str:
    return f"↷ {event.task_id} skipped: {event.data.get('reason')}"


def _recovered(event: Event, _: float | None) -> str:
    return f"↺ {event.task_id} recovered by {event.data.get('fallback')!r}"


def _dead_lettered(event: Event, _: float | None) -> str:
    return f"  {event.task_id} went to the dead-letter queue as {event.data.get('dead_letter_id')}"


def _simple(symbol: str, words: str) -> Callable[[Event, float | None], str]:
    return lambda event, _: f"{symbol} {event.task_id} {words}"


_FORMATTERS = {
    "task.started": _started,
    "task.succeeded": _succeeded,
    "task.retrying": _retrying,
    "task.failed": _failed,
    "task.skipped": _skipped,
    "task.recovered": _recovered,
    "task.dead_lettered": _dead_lettered,
    "task.cancelled": _simple("⊘", "cancelled"),
    "task.interrupted": _simple("!", "interrupted; it runs again"),
    "task.replayed": _simple("↻", "replayed from the dead-letter queue"),
}
