"""examples/clients/run_workflow.py as a new user runs it: over stdio, and against `aop serve`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from test_serve import free_port, read_until, stop

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "examples" / "clients" / "run_workflow.py"
WAIT = 60  # seconds: the script starts a Python process of its own (stdio) and runs 4 tasks
TOKEN = "example-client-token-0123456789"


def env_for(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AOP_")}
    return {**env, "AOP_DATA_DIR": str(tmp_path / "data"), **extra}


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
    proc = run_script(env_for(tmp_path), "--db", str(tmp_path / "aop.db"))
    assert_ran_hello(proc)


@pytest.mark.slow
def test_the_example_client_runs_hello_against_aop_serve(tmp_path: Path) -> None:
    port = free_port()
    env = env_for(tmp_path, AOP_TOKEN=TOKEN)
    argv = ["serve", "--port", str(port), "--db", str(tmp_path / "aop.db")]
    server = subprocess.Popen(
        [sys.executable, "-m", "aop_mcp", *argv],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        said = read_until(server.stderr, "aop-mcp serving on", WAIT)
        assert "token:" not in said  # AOP_TOKEN was preset: nothing to print
        # The token reaches the script through AOP_TOKEN, as the docstring says it may.
        proc = run_script(env, "--url", f"http://127.0.0.1:{port}/mcp")
        assert_ran_hello(proc)
        assert stop(server) == 0
    finally:
        server.kill()
        server.communicate(timeout=WAIT)


@pytest.mark.slow
def test_the_example_client_refuses_a_url_without_a_token(tmp_path: Path) -> None:
    proc = run_script(env_for(tmp_path), "--url", "http://127.0.0.1:9/mcp")
    assert proc.returncode == 2
    assert "--url needs --token" in proc.stderr
