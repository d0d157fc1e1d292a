"""Engine throughput with durable SQLite state and the python executor on no-op tasks.

Prints one JSON line per case, then one with peak RSS:
  (a) one run of 1,000 independent tasks: tasks/s          (target >= 3,000)
  (b) a chain of 200 dependent tasks: ms per step            (target <= 0.5)
  (c) 200 one-task runs started together: runs/s             (target >= 1,000)

Usage: uv run python tools/bench_engine.py [--repeat N] [--concurrency N]
Each case runs `--repeat` times on a fresh database; the best and the median are shown.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from aop_mcp.config import Settings
from aop_mcp.hub import Hub, open_hub


async def noop() -> None:
    """The task every case runs: all the time measured is the engine's."""


NOOP = {"executor": "python", "function": "bench_engine:noop"}


def independent(count: int) -> dict:
    return {"name": "wide", "tasks": [{"id": f"t{i}", "run": NOOP} for i in range(count)]}


def chain(count: int) -> dict:
    tasks = [{"id": "t0", "run": NOOP}]
    tasks += [{"id": f"t{i}", "needs": [f"t{i - 1}"], "run": NOOP} for i in range(1, count)]
    return {"name": "chain", "tasks": tasks}


async def one_run(hub: Hub, document: dict) -> float:
    await hub.workflows.define(document)
    started = time.perf_counter()
    run = await hub.runs.start(document["name"])
    done = await hub.runs.wait(run.id)
    elapsed = time.perf_counter() - started
    assert done.status == "succeeded", done
    return elapsed


async def case_wide(hub: Hub) -> float:
    seconds = await one_run(hub, independent(1000))
    return 1000 / seconds


async def case_chain(hub: Hub) -> float:
    seconds = await one_run(hub, chain(200))
    return seconds / 200 * 1000


async def case_many_runs(hub: Hub) -> float:
    await hub.workflows.define({"name": "single", "tasks": [{"id": "only", "run": NOOP}]})
    started = time.perf_counter()
    runs = await asyncio.gather(*(hub.runs.start("single") for _ in range(200)))
    done = await asyncio.gather(*(hub.runs.wait(run.id) for run in runs))
    elapsed = time.perf_counter() - started
    assert all(run.status == "succeeded" for run in done)
    return 200 / elapsed


CASES: list[tuple[str, str, Callable[[Hub], Awaitable[float]], float, bool]] = [
    ("a_1000_independent_tasks", "tasks/s", case_wide, 3000, True),
    ("b_chain_of_200", "ms/step", case_chain, 0.5, False),
    ("c_200_runs_together", "runs/s", case_many_runs, 1000, True),
]


async def measure(case: Callable[[Hub], Awaitable[float]], concurrency: int) -> float:
    with tempfile.TemporaryDirectory(prefix="aop-bench-") as tmp:
        settings = Settings(
            data_dir=Path(tmp), db=Path(tmp) / "bench.db", max_concurrency=concurrency
        )
        async with open_hub(settings, adopt_orphans=False) as hub:
            return await case(hub)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).parent))  # so "bench_engine:noop" imports
    for name, unit, case, target, higher_is_better in CASES:
        values = [asyncio.run(measure(case, args.concurrency)) for _ in range(args.repeat)]
        best = max(values) if higher_is_better else min(values)
        met = best >= target if higher_is_better else best <= target
        line = {
            "case": name,
            "unit": unit,
            "best": round(best, 3),
            "median": round(statistics.median(values), 3),
            "target": target,
            "met": met,
            "max_concurrency": args.concurrency,
        }
        print(json.dumps(line), flush=True)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"case": "peak_rss", "unit": "MiB", "value": round(peak_mb, 1)}))


if __name__ == "__main__":
    main()
