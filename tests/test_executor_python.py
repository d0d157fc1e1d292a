"""The python executor calls real callables by their "module:attr" path."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import executor_callables
import pytest

from aop_mcp.executors import PythonExecutor
from aop_mcp.models import FailureKind, TaskOutput
from aop_mcp.ports.executor import AttemptFailed, ExecutionRequest

pytestmark = pytest.mark.anyio


@dataclass(frozen=True)
class PythonSpec:
    function: str
    args: dict[str, Any] = field(default_factory=dict)
    executor: str = "python"


def request(
    function: str, timeout: float | None = None, cap: int = 65536, **args: Any
) -> ExecutionRequest:
    return ExecutionRequest(
        run_id="run_1",
        task_id="call",
        attempt=2,
        spec=PythonSpec(f"executor_callables:{function}", args),
        timeout=timeout,
        work_root=Path("/nonexistent"),  # the python executor never touches the disk
        output_cap=cap,
    )


async def call(req: ExecutionRequest) -> TaskOutput:
    with anyio.fail_after(10):
        return await PythonExecutor().execute(req)


async def fail(req: ExecutionRequest) -> AttemptFailed:
    with pytest.raises(AttemptFailed) as caught:
        await call(req)
    return caught.value


async def test_sync_callable_result_becomes_json_and_stdout() -> None:
    output = await call(request("add", a=2, b=3))
    assert output.exit_code == 0
    assert output.json == {"sum": 5}
    assert output.stdout == '{"sum": 5}'
    assert output.attempt == 2
    assert output.cap_bytes == 65536


async def test_async_callable_is_awaited() -> None:
    output = await call(request("greet", name="Ada"))
    assert output.json == "hello Ada"
    assert output.stdout == '"hello Ada"'


async def test_none_result_gives_empty_output() -> None:
    output = await call(request("noop"))
    assert output == TaskOutput(exit_code=0, attempt=2, cap_bytes=65536, duration=output.duration)


async def test_nested_attribute_path_is_followed() -> None:
    output = await call(request("Tools.echo", x=[1, (2, 3)]))
    assert output.json == {"x": [1, [2, 3]]}  # as the store would give it back


async def test_non_serialisable_result_is_kept_as_text() -> None:
    output = await call(request("opaque"))
    assert output.json is None
    assert output.stdout == "<opaque thing>"


async def test_large_result_is_capped() -> None:
    output = await call(request("big", cap=100, size=5000))
    assert output.stdout_truncated
    assert len(output.stdout.encode()) <= 100
    assert output.json is None


async def test_exception_fails_the_attempt_with_its_type_and_message() -> None:
    failed = await fail(request("fail", message="bad input"))
    assert failed.error.kind is FailureKind.ERROR
    assert failed.error.message == "ValueError: bad input"
    assert failed.output is not None
    assert failed.output.attempt == 2


async def test_wrong_arguments_fail_the_attempt() -> None:
    failed = await fail(request("add", a=1))
    assert failed.error.kind is FailureKind.ERROR
    assert failed.error.message.startswith("TypeError: ")


async def test_timeout_error_raised_by_the_callable_is_not_a_timeout() -> None:
    failed = await fail(request("raise_timeout", timeout=30))
    assert failed.error.kind is FailureKind.ERROR
    assert failed.error.message == "TimeoutError: the callable's own deadline"


@pytest.mark.parametrize(
    ("function", "says"),
    [
        ("no_such_module_xyz:run", "no module named 'no_such_module_xyz'"),
        ("executor_callables:missing", "'executor_callables' has no attribute 'missing'"),
        ("executor_callables:Tools.nope", "has no attribute 'nope'"),
        ("executor_callables:not_callable", "not a callable"),
        ("executor_callables", "must look like 'package.module:attribute'"),
    ],
)
async def test_bad_function_path_fails_naming_it(function: str, says: str) -> None:
    req = ExecutionRequest("run_1", "call", 1, PythonSpec(function), None, Path("/x"), 100)
    failed = await fail(req)
    assert failed.error.kind is FailureKind.ERROR
    assert repr(function) in failed.error.message
    assert says in failed.error.message


async def test_async_callable_times_out_and_is_cancelled() -> None:
    failed = await fail(request("wait_forever", timeout=0.1, name="timed-out"))
    assert failed.error.kind is FailureKind.TIMEOUT
    assert failed.error.message == "timed out after 0.1s"
    assert "timed-out" in executor_callables.cancelled


async def test_sync_callable_timeout_reports_a_timeout() -> None:
    executor_callables.released.clear()
    try:
        failed = await fail(request("block", timeout=0.1))
    finally:
        executor_callables.released.set()  # the thread can not be killed: let it finish
    assert failed.error.kind is FailureKind.TIMEOUT


async def test_cancellation_reaches_the_async_callable() -> None:
    started = asyncio.Event()
    req = request("wait_forever", name="c1", started=started)
    attempt = asyncio.create_task(PythonExecutor().execute(req))
    with anyio.fail_after(5):
        await started.wait()
        attempt.cancel()
        with pytest.raises(asyncio.CancelledError):
            await attempt
    assert "c1" in executor_callables.cancelled
