"""Every workflow in examples/ runs through the real CLI and does what its comments promise."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

EXAMPLES = Path(__file__).parent.parent / "examples"
TIMEOUT = 60

Run = dict[str, Any]


def run_example(tmp_path: Path, name: str, *inputs: str) -> tuple[int, Run]:
    """`aop run examples/NAME.yaml --json` with `--input` pairs; exit code and run JSON."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AOP_")}
    env["AOP_DATA_DIR"] = str(tmp_path / "data")
    pairs = [arg for pair in inputs for arg in ("--input", pair)]
    options = [*pairs, "--db", str(tmp_path / "aop.db"), "--json"]
    result = subprocess.run(
        [sys.executable, "-m", "aop_mcp", "run", str(EXAMPLES / f"{name}.yaml"), *options],
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert result.stdout, result.stderr
    return result.returncode, json.loads(result.stdout)


def tasks(run: Run) -> dict[str, Run]:
    return {task["task_id"]: task for task in run["tasks"]}


def stdout(run: Run, task_id: str) -> str:
    return tasks(run)[task_id]["output"]["stdout"]


def check_hello(tmp_path: Path) -> None:
    code, run = run_example(tmp_path, "hello")
    assert (code, run["status"]) == (0, "succeeded")
    assert stdout(run, "upper") == "HELLO, WORLD\n"
    assert stdout(run, "count").strip() == "12"
    assert stdout(run, "join") == "HELLO, WORLD (12 characters)\n"


def check_flaky(tmp_path: Path) -> None:
    code, run = run_example(tmp_path, "flaky")
    assert (code, run["status"]) == (0, "succeeded")
    flaky = tasks(run)["flaky"]
    assert (flaky["status"], flaky["attempts"]) == ("succeeded", 2)
    assert flaky["output"]["stdout"] == "up on attempt 2\n"
    assert stdout(run, "report") == "flaky said: up on attempt 2\n"


def check_fallback(tmp_path: Path) -> None:
    code, run = run_example(tmp_path, "fallback")
    assert (code, run["status"]) == (0, "succeeded")
    primary = tasks(run)["primary"]
    assert (primary["status"], primary["recovered_by"]) == ("failed", "backup")
    assert stdout(run, "use") == "using: data from the backup mirror\n"


def check_inputs(tmp_path: Path) -> None:
    code, run = run_example(tmp_path, "inputs")
    assert (code, run["status"]) == (0, "succeeded")
    assert run["inputs"] == {"name": "world", "times": 2, "shout": False}
    assert stdout(run, "repeat") == "hello, world\n" * 2
    assert tasks(run)["shout"]["status"] == "skipped"
    code, run = run_example(tmp_path, "inputs", "name=Ada", "times=3", "shout=true")
    assert (code, run["status"]) == (0, "succeeded")
    assert run["inputs"] == {"name": "Ada", "times": 3, "shout": True}
    assert stdout(run, "repeat") == "hello, Ada\n" * 3
    assert stdout(run, "shout") == "HELLO, ADA!\n"


def check_python(tmp_path: Path) -> None:
    code, run = run_example(tmp_path, "python")
    assert (code, run["status"]) == (0, "succeeded")
    assert tasks(run)["parse"]["output"]["json"] == {"greeting": "hi", "names": ["Ada", "Grace"]}
    # The engine runs in the CLI's interpreter, which is this one.
    expected = f"hi Ada and Grace, from Python {platform.python_version()}\n"
    assert stdout(run, "report") == expected


EXPECTATIONS: dict[str, Callable[[Path], None]] = {
    "hello": check_hello,
    "flaky": check_flaky,
    "fallback": check_fallback,
    "inputs": check_inputs,
    "python": check_python,
}


def test_every_example_has_an_expectation() -> None:
    names = {path.stem for path in EXAMPLES.glob("*.yaml")}
    assert names, "examples/ holds no workflows"
    assert names == set(EXPECTATIONS), "add an expectation here for each new example"


@pytest.mark.parametrize("name", sorted(EXPECTATIONS))
def test_example_does_what_it_says(tmp_path: Path, name: str) -> None:
    EXPECTATIONS[name](tmp_path)
