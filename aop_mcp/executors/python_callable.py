"""The `python` executor: an attempt is one call of a Python callable in this process.

Cheap enough to benchmark the engine with: an async callable is awaited on the event loop
(no thread), its import is cached, and a `None` result costs no JSON work.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import json
import time
from collections.abc import Callable
from typing import Any

from aop_mcp.executors.capture import cap_text
from aop_mcp.models import FailureKind, TaskError, TaskOutput
from aop_mcp.ports.executor import AttemptFailed, ExecutionRequest

_Target = tuple[Callable[..., Any], bool]  # the callable, and whether it is a coroutine function


class PythonExecutor:
    """Calls `spec.function` ("package.module:attr.path") with `**spec.args`.

    A coroutine function is awaited under `asyncio.timeout(request.timeout)`; cancelling the
    attempt cancels it. A plain function runs in a worker thread (`asyncio.to_thread`) and the
    timeout bounds only the waiting: a thread cannot be killed, so a timed-out call may keep
    running in the background while the attempt is reported as timed out.

    The return value becomes the output: `json` holds it (as JSON would round-trip it) and
    `stdout` its JSON text; a value JSON cannot hold gives `str(value)` and `json=None`.
    """

    name = "python"
    version = "1"

    def __init__(self) -> None:
        self._targets: dict[str, _Target] = {}

    async def execute(self, request: ExecutionRequest) -> TaskOutput:
        """Run one call; return its output or raise AttemptFailed."""
        started = time.perf_counter()
        spec = request.spec
        function, is_async = self._targets.get(spec.function) or self._load(spec.function)
        args = spec.args or {}
        timer = asyncio.timeout(request.timeout)
        try:
            async with timer:
                if is_async:
                    value = await function(**args)
                else:
                    value = await asyncio.to_thread(function, **args)
        except Exception as exc:  # CancelledError is a BaseException: it passes through
            raise _failure(exc, timer, request, time.perf_counter() - started) from exc
        return _output(value, request, time.perf_counter() - started)

    def _load(self, path: str) -> _Target:
        function = import_callable(path)
        target = (function, inspect.iscoroutinefunction(function))
        self._targets[path] = target
        return target


def import_callable(path: str) -> Callable[..., Any]:
    """The callable `path` ("module.path:attr.path") names; AttemptFailed if there is none."""
    module_name, sep, attr_path = path.partition(":")
    if not sep or not module_name or not attr_path:
        raise _error(f"function {path!r} must look like 'package.module:attribute'")
    target: Any = _import_module(path, module_name)
    for attr in attr_path.split("."):
        try:
            target = getattr(target, attr)
        except AttributeError as exc:
            raise _error(
                f"cannot load {path!r}: {module_name!r} has no attribute {attr!r}"
            ) from exc
    if not callable(target):
        raise _error(f"cannot call {path!r}: it is a {type(target).__name__}, not a callable")
    return target


def _import_module(path: str, module_name: str) -> Any:
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise _error(f"cannot load {path!r}: no module named {exc.name!r}") from exc
    except Exception as exc:  # the module itself raised while being imported
        raise _error(
            f"cannot load {path!r}: importing {module_name!r} raised {_describe(exc)}"
        ) from exc


def _failure(
    exc: Exception, timer: asyncio.Timeout, request: ExecutionRequest, duration: float
) -> AttemptFailed:
    output = TaskOutput(duration=duration, attempt=request.attempt, cap_bytes=request.output_cap)
    if isinstance(exc, TimeoutError) and timer.expired():
        error = TaskError(FailureKind.TIMEOUT, f"timed out after {request.timeout:g}s")
    else:  # a TimeoutError the callable raised itself is its own failure, not ours
        error = TaskError(FailureKind.ERROR, _describe(exc))
    return AttemptFailed(error, output)


def _output(value: Any, request: ExecutionRequest, duration: float) -> TaskOutput:
    if value is None:  # the common case of a benchmark no-op: no JSON work at all
        return TaskOutput(
            exit_code=0, duration=duration, attempt=request.attempt, cap_bytes=request.output_cap
        )
    text, parsed = _as_json(value)
    stdout, truncated = cap_text(text, request.output_cap)
    return TaskOutput(
        exit_code=0,
        stdout=stdout,
        # Like the local executor: a value too large for the cap is not kept whole either.
        json=None if truncated else parsed,
        duration=duration,
        attempt=request.attempt,
        stdout_truncated=truncated,
        cap_bytes=request.output_cap,
    )


def _as_json(value: Any) -> tuple[str, Any]:
    """The value's JSON text and its JSON round-trip (what the store would give back), or
    `str(value)` and None when JSON cannot hold it."""
    try:
        text = json.dumps(value, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError, RecursionError):
        return str(value), None
    return text, json.loads(text)


def _describe(exc: BaseException) -> str:
    message = str(exc)
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


def _error(message: str) -> AttemptFailed:
    return AttemptFailed(TaskError(FailureKind.ERROR, message))
