"""The `aop` command, driven as a user drives it: real subprocesses on a real SQLite file."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from servers import clean_env, read_until, spawn

from aop_mcp.cli.render import ProgressLines, to_json
from aop_mcp.models import Event, FailureKind, RunStatus, TaskError

TIMEOUT = 60  # seconds any one command may take before the test fails

Aop = Callable[..., subprocess.CompletedProcess[str]]

NEEDS_MARKER = """
name: needs-marker
inputs:
  marker: {type: string}
tasks:
  - id: check
    run:
      executor: local
      shell: test -f "$MARKER" || { echo "the marker file is missing" >&2; exit 1; }
      env: {MARKER: "{{ inputs.marker }}"}
  - id: after
    needs: [check]
    run: {executor: local, command: [echo, "after the check"]}
"""

SLOW = """
name: slow
tasks:
  - id: nap
    run: {executor: local, command: [sleep, "60"]}
  - id: after
    needs: [nap]
    run: {executor: local, command: [echo, done]}
"""

INVALID = """
name: broken
tasks:
  - id: a
    run: {executor: local, command: [echo, a]}
  - id: b
    needs: [a, nope]
    run: {executor: local, command: [echo, b]}
  - id: c
    needs: [b]
    fallback: ghost
    run: {executor: local, command: [echo, c]}
"""


@pytest.fixture
def aop(tmp_path: Path) -> Aop:
    """Run `python -m aop_mcp ARGS...` to its end; returns the completed process."""
    env = clean_env(tmp_path)

    def run(*args: str, **extra_env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "aop_mcp", *args],
            env={**env, **extra_env},
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            cwd=tmp_path,
        )

    return run


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def only_line(text: str) -> str:
    lines = text.strip().splitlines()
    assert len(lines) == 1, text
    return lines[0]


# --- validate -------------------------------------------------------------------------------


def test_version_names_the_package(aop: Aop) -> None:
    result = aop("--version")
    assert result.returncode == 0
    assert result.stdout.startswith("aop-mcp ")


def test_validate_ok_names_workflow_and_task_count_without_a_database(
    aop: Aop, tmp_path: Path
) -> None:
    result = aop("validate", str(Path(__file__).parent.parent / "examples" / "hello.yaml"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok: workflow 'hello' (4 tasks)"
    assert not (tmp_path / "data").exists()


def test_validate_invalid_prints_each_problem_with_task_and_field(aop: Aop, tmp_path: Path) -> None:
    result = aop("validate", str(write(tmp_path, "broken.yaml", INVALID)))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 2, result.stderr
    assert all(line.startswith("aop: error: invalid workflow: ") for line in lines)
    assert any("task 'b', field 'needs'" in line and "'nope'" in line for line in lines)
    assert any("task 'c', field 'fallback'" in line and "'ghost'" in line for line in lines)
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("name", "text", "says"),
    [
        ("missing.yaml", None, "cannot read the workflow file"),
        ("syntax.yaml", "name: [\n", "YAML syntax error at line 2"),
        ("list.yaml", "- a\n- b\n", "a workflow document is a mapping"),
    ],
)
def test_unreadable_workflow_file_is_one_line_and_exit_2(
    aop: Aop, tmp_path: Path, name: str, text: str | None, says: str
) -> None:
    path = tmp_path / name if text is None else write(tmp_path, name, text)
    for command in ("validate", "run"):
        result = aop(command, str(path))
        assert result.returncode == 2
        assert says in only_line(result.stderr)
        assert "Traceback" not in result.stderr


# --- run --------------------------------------------------------------------------------------


def test_run_that_succeeds_exits_0_with_a_summary_table(aop: Aop) -> None:
    result = aop("run", str(Path(__file__).parent.parent / "examples" / "hello.yaml"))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "(hello v1): succeeded" in lines[0]
    assert lines[1].split() == ["TASK", "STATUS", "ATTEMPTS", "DURATION", "NOTE"]
    assert [line.split()[:3] for line in lines[2:]] == [
        [task, "succeeded", "1"] for task in ("greet", "upper", "count", "join")
    ]
    assert result.stderr == ""  # not a terminal: no live progress


def test_run_json_is_the_run_with_every_task_run(aop: Aop, tmp_path: Path) -> None:
    hello = Path(__file__).parent.parent / "examples" / "hello.yaml"
    result = aop("run", str(hello), "--json", "--db", str(tmp_path / "x.db"))
    assert result.returncode == 0, result.stderr
    run = json.loads(result.stdout)
    assert run["status"] == "succeeded"
    assert run["workflow"] == "hello"
    assert {"id", "inputs", "created_at", "finished_at", "error"} <= run.keys()
    tasks = {t["task_id"]: t for t in run["tasks"]}
    assert tasks["join"]["output"]["stdout"] == "HELLO, WORLD (12 characters)\n"
    assert tasks["join"]["status"] == "succeeded"
    assert tasks["join"]["error"] is None
    assert (tmp_path / "x.db").exists()


def test_run_in_memory_touches_no_file(aop: Aop, tmp_path: Path) -> None:
    hello = Path(__file__).parent.parent / "examples" / "hello.yaml"
    result = aop("run", str(hello), "--db", ":memory:")
    assert result.returncode == 0, result.stderr
    assert not (tmp_path / "data" / "aop.db").exists()


def test_run_that_fails_exits_1_and_lands_in_the_dead_letter_queue(
    aop: Aop, tmp_path: Path
) -> None:
    workflow = write(tmp_path, "marker.yaml", NEEDS_MARKER)
    result = aop("run", str(workflow), "--input", f"marker={tmp_path / 'absent'}")
    assert result.returncode == 1
    assert "failed" in result.stdout.splitlines()[0]
    assert "the marker file is missing" in result.stdout
    assert "upstream 'check' failed" in result.stdout
    listing = aop("dlq", "list")
    assert listing.returncode == 0
    assert "the marker file is missing" in listing.stdout
    letters = json.loads(aop("dlq", "list", "--json").stdout)
    assert [(d["task_id"], d["error"]["kind"]) for d in letters] == [("check", "exit_code")]


def test_dlq_replay_after_the_cause_is_fixed_drives_the_run_to_success(
    aop: Aop, tmp_path: Path
) -> None:
    marker = tmp_path / "marker"
    workflow = write(tmp_path, "marker.yaml", NEEDS_MARKER)
    first = aop("run", str(workflow), "--input", f"marker={marker}", "--json")
    assert first.returncode == 1
    [letter] = json.loads(aop("dlq", "list", "--json").stdout)
    marker.touch()
    replay = aop("dlq", "replay", letter["id"], "--json")
    assert replay.returncode == 0, replay.stderr
    run = json.loads(replay.stdout)
    assert run["id"] == json.loads(first.stdout)["id"]
    assert run["status"] == "succeeded"
    assert [(t["task_id"], t["status"]) for t in run["tasks"]] == [
        ("check", "succeeded"),
        ("after", "succeeded"),
    ]
    assert json.loads(aop("dlq", "list", "--json").stdout) == []
    again = aop("dlq", "replay", letter["id"])
    assert again.returncode == 1
    assert "already replayed" in only_line(again.stderr)


def test_dlq_replay_of_unknown_id_is_one_line_exit_1(aop: Aop) -> None:
    result = aop("dlq", "replay", "dlq_nope")
    assert result.returncode == 1
    assert "dead letter 'dlq_nope' does not exist" in only_line(result.stderr)


@pytest.mark.parametrize(
    ("given", "says"),
    [
        ("times", "--input 'times' is not KEY=VALUE"),
        ("=3", "--input '=3' is not KEY=VALUE"),
        ("times=many", "field 'inputs.times': expected an integer"),
        ("colour=red", "unknown input 'colour'"),
    ],
)
def test_bad_input_exits_2_with_one_line(aop: Aop, given: str, says: str) -> None:
    inputs = Path(__file__).parent.parent / "examples" / "inputs.yaml"
    result = aop("run", str(inputs), "--input", given)
    assert result.returncode == 2
    assert says in only_line(result.stderr)


def test_bad_configuration_exits_2_naming_the_setting(aop: Aop) -> None:
    result = aop("runs", "list", AOP_MAX_CONCURRENCY="lots")
    assert result.returncode == 2
    assert "AOP_MAX_CONCURRENCY='lots'" in only_line(result.stderr)


# --- runs ---------------------------------------------------------------------------------------


def test_runs_list_and_show(aop: Aop, tmp_path: Path) -> None:
    examples = Path(__file__).parent.parent / "examples"
    hello = json.loads(aop("run", str(examples / "hello.yaml"), "--json").stdout)
    aop("run", str(write(tmp_path, "marker.yaml", NEEDS_MARKER)), "-i", "marker=/nonexistent")
    listed = json.loads(aop("runs", "list", "--json").stdout)
    assert [r["workflow"] for r in listed] == ["needs-marker", "hello"]  # newest first
    failed = json.loads(aop("runs", "list", "--status", "failed", "--json").stdout)
    assert [r["workflow"] for r in failed] == ["needs-marker"]
    only_hello = aop("runs", "list", "--workflow", "hello")
    assert hello["id"] in only_hello.stdout
    assert "needs-marker" not in only_hello.stdout
    assert len(json.loads(aop("runs", "list", "--limit", "1", "--json").stdout)) == 1
    shown = aop("runs", "show", hello["id"])
    assert shown.returncode == 0
    assert "succeeded" in shown.stdout.splitlines()[0]
    assert "join:\n  HELLO, WORLD (12 characters)" in shown.stdout
    as_json = json.loads(aop("runs", "show", hello["id"], "--json").stdout)
    assert as_json == hello


def test_unknown_run_id_is_one_line_exit_1(aop: Aop) -> None:
    for args in (("runs", "show", "run_nope"), ("runs", "cancel", "run_nope")):
        result = aop(*args)
        assert result.returncode == 1
        assert "run 'run_nope' does not exist" in only_line(result.stderr)


def test_cancel_of_a_finished_run_says_it_has_ended(aop: Aop) -> None:
    hello = Path(__file__).parent.parent / "examples" / "hello.yaml"
    run = json.loads(aop("run", str(hello), "--json").stdout)
    result = aop("runs", "cancel", run["id"])
    assert result.returncode == 1
    assert only_line(result.stderr) == (
        f"aop: error: run {run['id']!r} is already succeeded; cannot cancel it"
    )


@pytest.mark.slow
def test_ctrl_c_cancels_the_run_and_exits_130(tmp_path: Path, aop: Aop) -> None:
    proc = spawn(tmp_path, "run", str(write(tmp_path, "slow.yaml", SLOW)), "--progress")
    try:
        read_until(proc.stderr, "▸ nap", TIMEOUT)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=TIMEOUT)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert "cancelling run" in err, (out, err)
    assert "cancelled" in out.splitlines()[0]
    [run] = json.loads(aop("runs", "list", "--json").stdout)
    assert run["status"] == "cancelled"


@pytest.mark.slow
def test_cancel_from_another_terminal_is_carried_out_by_the_driving_process(
    tmp_path: Path, aop: Aop
) -> None:
    proc = spawn(tmp_path, "run", str(write(tmp_path, "slow.yaml", SLOW)), "--progress")
    try:
        read_until(proc.stderr, "▸ nap", TIMEOUT)
        [run] = json.loads(aop("runs", "list", "--json").stdout)
        cancel = aop("runs", "cancel", run["id"])
        out, _ = proc.communicate(timeout=TIMEOUT)
    finally:
        proc.kill()
    assert cancel.returncode == 0, cancel.stderr
    assert "driven by another process" in cancel.stdout
    assert proc.returncode == 1
    assert "cancelled" in out.splitlines()[0]


def test_commands_other_than_serve_do_not_load_the_web_stack() -> None:
    probe = (
        "import sys, aop_mcp.cli.commands; "
        "print(sorted(m for m in ('mcp', 'starlette', 'uvicorn') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=TIMEOUT
    )
    assert result.stdout.strip() == "[]", result.stderr


# --- output helpers -----------------------------------------------------------------------------


def event(type_: str, now: float, task_id: str | None = "build", **data: object) -> Event:
    return Event(seq=1, run_id="run_1", type=type_, at=now, task_id=task_id, data=dict(data))


def test_progress_lines_read_like_a_log() -> None:
    lines = ProgressLines()
    shown = [
        lines.line(event("task.started", 10.0, "fetch", attempt=1)),
        lines.line(event("task.succeeded", 10.2, "fetch", attempt=1, cached=False)),
        lines.line(
            event("task.retrying", 11.0, at=12.0, kind="exit_code", message="exited with code 2")
        ),
        lines.line(event("task.skipped", 11.0, "deploy", reason="upstream 'build' failed")),
        lines.line(event("run.succeeded", 12.0, None)),
    ]
    assert shown == [
        "▸ fetch",
        "✓ fetch (0.20s)",
        "✗ build: exited with code 2 — retrying in 1.0s",
        "↷ deploy skipped: upstream 'build' failed",
        None,
    ]


def test_to_json_turns_records_into_plain_data() -> None:
    error = TaskError(FailureKind.TIMEOUT, "timed out after 1s")
    assert to_json({"e": [error], "s": RunStatus.FAILED}) == {
        "e": [{"kind": "timeout", "message": "timed out after 1s", "exit_code": None}],
        "s": "failed",
    }
    json.dumps(to_json(error))
