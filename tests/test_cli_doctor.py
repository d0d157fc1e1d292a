"""`aop doctor` as a user runs it: a subprocess with a controlled PATH and environment."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from servers import clean_env

from aop_mcp.config import DAGGER_VARIABLES

TIMEOUT = 30


def doctor(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {**clean_env(tmp_path), "PATH": str(tmp_path / "bin")}
    for key in ("AOP_SANDBOX", *DAGGER_VARIABLES):
        base.pop(key, None)
    base["PATH"] = str(tmp_path / "bin")
    return subprocess.run(
        [sys.executable, "-m", "aop_mcp", "doctor", *args],
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )


def line(output: str, name: str) -> str:
    [found] = [text for text in output.splitlines() if f" {name}: " in text]
    return found


def fake_dagger(tmp_path: Path, name: str = "dagger") -> Path:
    cli = tmp_path / "bin" / name
    cli.parent.mkdir(exist_ok=True)
    cli.write_text("#!/bin/sh\nexit 0\n")
    cli.chmod(0o755)
    return cli


def test_sandbox_required_without_bubblewrap_fails_with_the_fix(tmp_path: Path) -> None:
    done = doctor(tmp_path, AOP_SANDBOX="true", AOP_TASK_PATH=str(tmp_path))
    assert done.returncode == 1, done.stdout + done.stderr
    bwrap = line(done.stdout, "bubblewrap")
    assert bwrap.startswith("missing")
    assert "apt-get install bubblewrap" in bwrap


def test_auto_without_bubblewrap_is_a_warning_and_a_dagger_cli_needs_a_runner(
    tmp_path: Path,
) -> None:
    cli = fake_dagger(tmp_path)
    done = doctor(tmp_path, AOP_SANDBOX="auto", AOP_TASK_PATH=str(tmp_path))
    assert done.returncode == 0, done.stdout + done.stderr
    assert line(done.stdout, "bubblewrap").startswith("warning")
    assert "NOT sandboxed" in line(done.stdout, "bubblewrap")
    assert line(done.stdout, "database").startswith("ok")
    engine = line(done.stdout, "dagger engine")
    assert engine.startswith(f"warning  dagger engine: dagger CLI {cli} has no runner")
    assert "no docker on PATH; no podman on PATH" in engine
    assert "(fix: start Docker" in engine
    assert "_EXPERIMENTAL_DAGGER_RUNNER_HOST" in engine
    assert "dagger executor" not in done.stdout  # built now: no placeholder line


def test_no_session_and_no_dagger_cli_is_a_warning_saying_how_to_get_an_engine(
    tmp_path: Path,
) -> None:
    done = doctor(tmp_path, AOP_SANDBOX="false")
    assert done.returncode == 0, done.stdout + done.stderr
    engine = line(done.stdout, "dagger engine")
    assert engine.startswith("warning  dagger engine: no DAGGER_SESSION_PORT/DAGGER_SESSION_TOKEN")
    assert "(fix: run the hub inside `dagger run`" in engine


def test_a_dagger_cli_with_a_runner_host_is_ok(tmp_path: Path) -> None:
    cli = fake_dagger(tmp_path)
    done = doctor(tmp_path, AOP_SANDBOX="false", _EXPERIMENTAL_DAGGER_RUNNER_HOST="tcp://e:1234")
    engine = line(done.stdout, "dagger engine")
    assert engine == (
        f"ok       dagger engine: dagger CLI {cli} with _EXPERIMENTAL_DAGGER_RUNNER_HOST=tcp://e:1234"
    )


def test_a_dagger_cli_with_a_docker_daemon_that_answers_is_ok(tmp_path: Path) -> None:
    fake_dagger(tmp_path)
    fake_dagger(tmp_path, "docker")
    path = tmp_path / "docker.sock"
    with socket.socket(socket.AF_UNIX) as daemon:
        daemon.bind(str(path))
        daemon.listen(1)
        done = doctor(tmp_path, AOP_SANDBOX="false", DOCKER_HOST=f"unix://{path}")
    assert line(done.stdout, "dagger engine").endswith(f"with docker ({path})")
    path.unlink()  # nothing listens now: the CLI has no runner
    gone = doctor(tmp_path, AOP_SANDBOX="false", DOCKER_HOST=f"unix://{path}")
    assert f"docker: {path}: No such file or directory" in line(gone.stdout, "dagger engine")


@pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed")
def test_everything_present_exits_0_and_says_local_tasks_are_sandboxed(tmp_path: Path) -> None:
    fake_dagger(tmp_path)
    done = doctor(tmp_path, _EXPERIMENTAL_DAGGER_RUNNER_HOST="tcp://engine:1234")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "sandboxed with bubblewrap" in line(done.stdout, "bubblewrap")
    assert line(done.stdout, "setpriv").startswith("ok")
    assert line(done.stdout, "prlimit").startswith("ok")
    assert "tcp://engine:1234" in line(done.stdout, "dagger engine")


def test_dagger_session_is_checked_with_a_local_tcp_connect(tmp_path: Path) -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        port = str(server.getsockname()[1])
        done = doctor(
            tmp_path, AOP_SANDBOX="false", DAGGER_SESSION_PORT=port, DAGGER_SESSION_TOKEN="t"
        )
    assert "accepts connections" in line(done.stdout, "dagger engine")
    closed = doctor(
        tmp_path, AOP_SANDBOX="false", DAGGER_SESSION_PORT=port, DAGGER_SESSION_TOKEN="t"
    )
    assert line(closed.stdout, "dagger engine").startswith("warning")
    assert "does not answer" in closed.stdout


def test_unwritable_database_fails(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    done = doctor(tmp_path, "--db", str(blocker / "aop.db"), AOP_SANDBOX="false")
    assert done.returncode == 1
    database = line(done.stdout, "database")
    assert database.startswith("missing")
    assert "AOP_DB" in database
