"""Time from starting `aop stdio` to its answer to `initialize`, as an MCP client sees it.

Usage: uv run python tools/stdio_startup.py [--runs N] [--direct]

`--direct` starts `run_stdio` without the `aop` CLI in front, to show what the CLI adds.

Prints one JSON line: the median and each run in ms (target: 1000 ms). Python's own start and
the imports are included: that is what a client waits for. For what the imports cost, run
`python -X importtime -m aop_mcp stdio < /dev/null 2> importtime.log`.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-11-25",
        "capabilities": {},
        "clientInfo": {"name": "stdio_startup", "version": "0"},
    },
}


DIRECT = (
    "import sys; from aop_mcp.config import load_settings; from aop_mcp.mcp.stdio import "
    "run_stdio; raise SystemExit(run_stdio(load_settings().with_db(sys.argv[1])))"
)


def one_run(data_dir: Path, direct: bool) -> float:
    """Milliseconds from spawning the process to reading its initialize response."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AOP_")}
    env["AOP_DATA_DIR"] = str(data_dir)
    db = str(data_dir / "aop.db")
    argv = [sys.executable, "-c", DIRECT, db] if direct else [sys.executable, "-m", "aop_mcp"]
    argv += [] if direct else ["stdio", "--db", db]
    start = time.perf_counter()
    proc = subprocess.Popen(
        argv, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    )
    assert proc.stdin is not None
    assert proc.stdout is not None
    proc.stdin.write((json.dumps(INITIALIZE) + "\n").encode())
    proc.stdin.flush()
    line = proc.stdout.readline()
    elapsed = (time.perf_counter() - start) * 1000
    proc.stdin.close()
    proc.wait(timeout=30)
    assert json.loads(line)["id"] == 1, line
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--direct", action="store_true", help="start run_stdio without the CLI")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        one_run(
            Path(tmp), args.direct
        )  # warm-up: bytecode caches and the database file exist afterwards
        times = [one_run(Path(tmp), args.direct) for _ in range(args.runs)]
    print(
        json.dumps(
            {
                "median_ms": round(statistics.median(times)),
                "runs_ms": [round(t) for t in times],
                "target_ms": 1000,
            }
        )
    )


if __name__ == "__main__":
    main()
