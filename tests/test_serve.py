"""`aop serve` as an operator starts it: it listens, answers /healthz, stops on SIGTERM."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import threading
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from servers import free_port, read_until, spawn, spawned, stop

TIMEOUT = 30

SLOW = """
name: slow
inputs:
  pidfile: {type: string}
tasks:
  - id: nap
    run:
      executor: local
      shell: echo $$ > "$PIDFILE"; exec sleep 60
      env: {PIDFILE: "{{ inputs.pidfile }}"}
"""


def healthz(port: int) -> dict[str, object]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=TIMEOUT) as resp:
        assert resp.status == 200
        return json.load(resp)


def read_fifo(path: Path, seconds: float) -> int:
    """The number a writer puts in the FIFO at `path`; fails after `seconds`."""
    got: list[str] = []
    reader = threading.Thread(target=lambda: got.append(path.read_text()), daemon=True)
    reader.start()
    reader.join(seconds)
    assert got, f"nothing written to {path} within {seconds}s"
    return int(got[0])


@pytest.mark.slow
def test_serve_answers_healthz_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    port, db = free_port(), tmp_path / "aop.db"
    args = ("serve", "--host", "127.0.0.1", "--port", str(port), "--db", str(db))
    with spawned(tmp_path, *args) as proc:
        said = read_until(proc.stderr, "aop-mcp serving on", TIMEOUT)
        assert f"aop-mcp serving on http://127.0.0.1:{port} (database: {db})" in said
        health = healthz(port)
        assert health["status"] == "ok"
        assert health["database"] == str(db)
        assert health["runs_driven"] == 0
        assert isinstance(health["version"], str)
        assert stop(proc) == 0


@pytest.mark.slow
def test_serve_resumes_a_run_whose_process_was_killed(tmp_path: Path) -> None:
    db = tmp_path / "aop.db"
    workflow = tmp_path / "slow.yaml"
    workflow.write_text(SLOW)
    pidfile = tmp_path / "nap.pid"
    os.mkfifo(pidfile)  # the task blocks writing its pid until the test reads it
    # SIGKILLed as the block ends: the run is left running, as after a crash.
    with spawned(tmp_path, "run", str(workflow), "--db", str(db), "-i", f"pidfile={pidfile}"):
        task_pid = read_fifo(pidfile, TIMEOUT)  # the task is running
    # The task dies with its engine (parent-death signal); make sure before the restart.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(task_pid, signal.SIGKILL)
    port = free_port()
    with spawned(tmp_path, "serve", "--port", str(port), "--db", str(db)) as server:
        read_until(server.stderr, "aop-mcp serving on", TIMEOUT)
        assert healthz(port)["runs_driven"] == 1
        assert stop(server) == 0


def test_serve_with_an_unusable_database_says_so_in_one_line(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    proc = spawn(tmp_path, "serve", "--port", str(free_port()), "--db", str(blocker / "aop.db"))
    _, err = proc.communicate(timeout=TIMEOUT)
    assert proc.returncode == 1
    assert "Traceback" not in err
    errors = [line for line in err.splitlines() if line.startswith("aop: error:")]
    assert len(errors) == 1
    assert "cannot open the SQLite store" in errors[0]


def get(url: str, token: str | None) -> tuple[int, dict[str, object]]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as resp:
            return resp.status, json.load(resp)
    except urllib.error.HTTPError as err:
        with err:
            return err.code, json.load(err)


@pytest.mark.slow
def test_serve_puts_rest_and_mcp_behind_the_token_and_stops_with_a_stream_open(
    tmp_path: Path,
) -> None:
    port, token = free_port(), "aop_test_" + "x" * 24
    base = f"http://127.0.0.1:{port}"
    with spawned(tmp_path, "serve", "--port", str(port), AOP_TOKEN=token) as proc:
        read_until(proc.stderr, "aop-mcp serving on", TIMEOUT)
        assert get(f"{base}/api/v1/workflows", token) == (200, {"items": []})
        status, problem = get(f"{base}/api/v1/workflows", None)
        assert status == 401
        assert problem["status"] == 401
        assert get(f"{base}/api/v1/openapi.json", None)[0] == 200
        mcp = urllib.request.Request(f"{base}/mcp", data=b"{}", method="POST")
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(mcp, timeout=TIMEOUT)
        refused.value.close()
        assert refused.value.code == 401
        events = urllib.request.Request(
            f"{base}/api/v1/events", headers={"Authorization": f"Bearer {token}"}
        )
        with urllib.request.urlopen(events, timeout=TIMEOUT) as stream:
            assert stream.headers["Content-Type"].startswith("text/event-stream")
            assert stop(proc) == 0  # the open event stream does not hold the shutdown
