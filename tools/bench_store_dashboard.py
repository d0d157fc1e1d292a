"""The dashboard's store queries on a SQLite file of 10,000 runs: median ms each.

Seeds a fresh database through the store API, in large commits: `--runs` runs of three
workflows with five task runs each (mostly succeeded, some failed or cancelled; the newest
1% running or pending, as on a live server), their attempts (the `summarize` workflow's
second task is served by one of five agents), and a dead letter per failed run (half of
them replayed). Then times every query the dashboard makes `--repeat` times and prints one
JSON line per query with the median and the 95th percentile (target: median <= 5 ms), then
one line with the seeding time.

Usage: uv run python tools/bench_store_dashboard.py [--runs N] [--repeat N] [--db PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aop_mcp.models import (
    Attempt,
    AttemptStatus,
    Changes,
    DeadLetter,
    FailureKind,
    Run,
    RunStatus,
    TaskError,
    TaskOutput,
    TaskRun,
    TaskStatus,
)
from aop_mcp.store import SqliteStore

TARGET_MS = 5.0
WORKFLOWS = ("build", "deploy", "summarize")
AGENTS = tuple(f"agent_{i}" for i in range(5))
TASKS = tuple(f"t{i}" for i in range(5))
AGENT_TASK = "t1"  # of `summarize`
SPAN = 7200.0  # the runs were created over the last two hours
FINISHED_MIX = [(RunStatus.SUCCEEDED, 0.85), (RunStatus.FAILED, 0.10), (RunStatus.CANCELLED, 0.05)]
ACTIVE_MIX = [(RunStatus.RUNNING, 0.7), (RunStatus.PENDING, 0.3)]
ACTIVE_SHARE = 0.01  # the newest runs are the unfinished ones
Query = Callable[[], Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class Seeded:
    now: float
    run_ids: list[str]  # newest first, as list_runs pages them
    of_workflow: list[str]  # the runs of `deploy`, newest first
    letter_ids: list[str]  # the dead letters not replayed, newest first


# Seeding ---------------------------------------------------------------------------------


def task_statuses(status: RunStatus, rng: random.Random) -> list[TaskStatus]:
    """The statuses of a run's five task runs, as the engine would leave them."""
    if status is RunStatus.SUCCEEDED:
        return [TaskStatus.SUCCEEDED] * 5
    if status is RunStatus.PENDING:
        return [TaskStatus.READY] + [TaskStatus.PENDING] * 4
    cut = rng.randrange(1, 5)
    head = [TaskStatus.SUCCEEDED] * cut
    if status is RunStatus.FAILED:
        return head + [TaskStatus.FAILED] + [TaskStatus.SKIPPED] * (4 - cut)
    if status is RunStatus.CANCELLED:
        return head + [TaskStatus.CANCELLED] * (5 - cut)
    return head + [TaskStatus.RUNNING] + [TaskStatus.PENDING] * (4 - cut)


def seed_run(changes: Changes, index: int, runs: int, created: float, rng: random.Random) -> str:
    """Put one run with its task runs, attempts and dead letter into `changes`."""
    mix = ACTIVE_MIX if index >= runs * (1 - ACTIVE_SHARE) else FINISHED_MIX
    (status,) = rng.choices([s for s, _ in mix], [w for _, w in mix])
    workflow = WORKFLOWS[index % len(WORKFLOWS)]
    finished = created + 5.0 if status.finished else None
    run = Run(
        f"run_{index:06d}", workflow, 1, status, {"n": index}, created, None, created, finished
    )
    changes.put_run(run)
    for seq, task_status in enumerate(task_statuses(status, rng)):
        seed_task(changes, run, TASKS[seq], task_status, created + seq, rng)
    return run.id


def seed_task(
    changes: Changes, run: Run, task_id: str, status: TaskStatus, at: float, rng: random.Random
) -> None:
    ran = status not in (TaskStatus.PENDING, TaskStatus.READY, TaskStatus.SKIPPED)
    finished = at + 1.0 if status.finished else None
    agent = rng.choice(AGENTS) if run.workflow == "summarize" and task_id == AGENT_TASK else None
    output = TaskOutput(0, f"output of {task_id}", attempt=1, agent=agent) if ran else None
    changes.put_task_run(
        TaskRun(run.id, task_id, status, attempts=int(ran), started_at=at, finished_at=finished)
    )
    if ran:
        attempt_status = {
            TaskStatus.SUCCEEDED: AttemptStatus.SUCCEEDED,
            TaskStatus.FAILED: AttemptStatus.FAILED,
            TaskStatus.CANCELLED: AttemptStatus.CANCELLED,
            TaskStatus.RUNNING: AttemptStatus.RUNNING,
        }[status]
        changes.put_attempt(
            Attempt(run.id, task_id, 1, attempt_status, "engine", at, at + 30, finished, output)
        )
    if status is TaskStatus.FAILED:
        error = TaskError(FailureKind.EXIT_CODE, "exit 1", 1)
        replayed = at + 60.0 if rng.random() < 0.5 else None
        letter = DeadLetter(f"dl_{run.id}", run.id, task_id, 3, error, at + 1.0, replayed)
        changes.put_dead_letter(letter)


async def seed(store: SqliteStore, runs: int, batch: int) -> Seeded:
    rng = random.Random(7)
    now = time.time()
    start = now - SPAN
    for first in range(0, runs, batch):
        changes = Changes()
        for index in range(first, min(first + batch, runs)):
            seed_run(changes, index, runs, start + SPAN * index / runs, rng)
        await store.commit(changes)
    newest = await store.list_runs(limit=runs)
    deploy = await store.list_runs(workflow="deploy", limit=runs)
    letters = await store.list_dead_letters(newest_first=True)
    return Seeded(now, [r.id for r in newest], [r.id for r in deploy], [d.id for d in letters])


# Timing ----------------------------------------------------------------------------------


def queries(store: SqliteStore, seeded: Seeded) -> dict[str, Query]:
    """Every dashboard query, by name; "deep" pages start halfway down the list."""
    now, run_ids, deploy = seeded.now, seeded.run_ids, seeded.of_workflow
    deep, deep_deploy = run_ids[len(run_ids) // 2], deploy[len(deploy) // 2]
    deep_letter = seeded.letter_ids[len(seeded.letter_ids) // 2]
    some_run = run_ids[len(run_ids) // 3]
    active = [RunStatus.PENDING, RunStatus.RUNNING]
    done = [RunStatus.SUCCEEDED, RunStatus.FAILED]
    return {
        "count_runs": lambda: store.count_runs(),
        "count_runs_of_workflow": lambda: store.count_runs(workflow="deploy"),
        "task_throughput_10min_10s": lambda: store.task_throughput(
            since=now - 600, until=now, bucket_seconds=10
        ),
        "list_runs_first_page": lambda: store.list_runs(limit=50),
        "list_runs_deep_page": lambda: store.list_runs(limit=50, before=deep),
        "list_runs_workflow_first_page": lambda: store.list_runs(workflow="deploy"),
        "list_runs_workflow_deep_page": lambda: store.list_runs(
            workflow="deploy", before=deep_deploy
        ),
        "list_runs_active_first_page": lambda: store.list_runs(statuses=active),
        "list_runs_active_deep_page": lambda: store.list_runs(statuses=active, before=deep),
        "list_runs_done_deep_page": lambda: store.list_runs(statuses=done, before=deep),
        "list_runs_workflow_failed_first_page": lambda: store.list_runs(
            workflow="deploy", statuses=[RunStatus.FAILED]
        ),
        "list_runs_workflow_failed_deep_page": lambda: store.list_runs(
            workflow="deploy", statuses=[RunStatus.FAILED], before=deep_deploy
        ),
        "count_dead_letters": lambda: store.count_dead_letters(),
        "count_dead_letters_with_replayed": lambda: store.count_dead_letters(include_replayed=True),
        "list_dead_letters_first_page": lambda: store.list_dead_letters(
            newest_first=True, limit=50
        ),
        "list_dead_letters_deep_page": lambda: store.list_dead_letters(
            newest_first=True, limit=50, before=deep_letter
        ),
        "get_run_attempts": lambda: store.get_run_attempts(some_run),
        "list_agent_attempts": lambda: store.list_agent_attempts(AGENTS[0]),
    }


async def time_query(query: Query, repeat: int) -> tuple[float, float]:
    """Median and 95th percentile of `repeat` calls, in ms (after one warm-up call)."""
    await query()
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        await query()
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    return statistics.median(samples), samples[min(len(samples) - 1, int(len(samples) * 0.95))]


async def bench(path: Path, runs: int, repeat: int, batch: int) -> None:
    store = SqliteStore(path)
    await store.open()
    try:
        started = time.perf_counter()
        seeded = await seed(store, runs, batch)
        seeding = time.perf_counter() - started
        for name, query in queries(store, seeded).items():
            median, p95 = await time_query(query, repeat)
            line = {
                "query": name,
                "unit": "ms",
                "median": round(median, 3),
                "p95": round(p95, 3),
                "target": TARGET_MS,
                "met": median <= TARGET_MS,
            }
            print(json.dumps(line), flush=True)
        print(json.dumps({"seeded_runs": runs, "seconds": round(seeding, 2)}))
    finally:
        await store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=50)
    parser.add_argument("--batch", type=int, default=1000, help="runs per seeding commit")
    parser.add_argument("--db", type=Path, help="keep the database here (must not exist)")
    args = parser.parse_args()
    if args.db is not None:
        if args.db.exists():
            parser.error(f"--db {args.db} exists; give a path that does not")
        asyncio.run(bench(args.db, args.runs, args.repeat, args.batch))
        return
    with tempfile.TemporaryDirectory(prefix="aop-bench-") as tmp:
        asyncio.run(bench(Path(tmp) / "dashboard.db", args.runs, args.repeat, args.batch))


if __name__ == "__main__":
    main()
