"""examples/clients/run_workflow.py as a new user runs it: over stdio, and against `aop serve`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from servers import clean_env, free_port, read_until, spawned, stop

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "examples" / "clients" / "run_workflow.py"
WAIT = 60  # seconds: the script starts a Python process of its own (stdio) and runs 4 tasks
TOKEN = "example-client-token-0123456789"


def run_script(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=WAIT,
        cwd=ROOT,
    )


def assert_ran_hello(proc: subprocess.CompletedProcess[str]) -> None:
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert "defined hello" in out
    progress = [line for line in out.splitlines() if line.startswith("progress ")]
    assert progress, out
    assert progress[-1].startswith("progress 4/4: run succeeded")
    assert ": succeeded" in out
    for task in ("greet", "upper", "count", "join"):
        assert any(line.split()[:2] == [task, "succeeded"] for line in out.splitlines()), task
    assert "flowchart" in out
    assert "Traceback" not in proc.stderr


@pytest.mark.slow
def test_the_example_client_runs_hello_over_stdio(tmp_path: Path) -> None:
    proc = run_script(clean_env(tmp_path), "--db", str(tmp_path / "aop.db"))
    assert_ran_hello(proc)


@pytest.mark.slow
def test_the_example_client_runs_hello_against_aop_serve(tmp_path: Path) -> None:
    port = free_port()
    env = clean_env(tmp_path, AOP_TOKEN=TOKEN)
    argv = ["serve", "--port", str(port), "--db", str(tmp_path / "aop.db")]
    with spawned(tmp_path, *argv, seconds=WAIT, AOP_TOKEN=TOKEN) as server:
        said = read_until(server.stderr, "aop-mcp serving on", WAIT)
        assert "token:" not in said  # AOP_TOKEN was preset: nothing to print
        # The token reaches the script through AOP_TOKEN, as the docstring says it may.
        proc = run_script(env, "--url", f"http://127.0.0.1:{port}/mcp")
        assert_ran_hello(proc)
        assert stop(server) == 0


@pytest.mark.slow
def test_the_example_client_refuses_a_url_without_a_token(tmp_path: Path) -> None:
    proc = run_script(clean_env(tmp_path), "--url", "http://127.0.0.1:9/mcp")
    assert proc.returncode == 2
    assert "--url needs --token" in proc.stderr
