"""The `agent` executor: an attempt is one message to an agent the Agent Manager picks.

The attempt waits for a free slot on a healthy agent (by name, or with the capability), sends
`spec.input` through the adapter of the agent's kind, and gives the slot back however it
ended. The task's timeout bounds the wait and the answer together; a task without one waits
at most `default_wait` for a slot and then as long as the agent takes.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from aop_mcp.errors import AopError
from aop_mcp.executors.capture import cap_text, parse_json
from aop_mcp.models import AgentKind, FailureKind, TaskError, TaskOutput
from aop_mcp.ports.agent import AgentAdapter, AgentFailure, AgentLease, AgentPicker, AgentReply
from aop_mcp.ports.executor import AttemptFailed, ExecutionRequest

if TYPE_CHECKING:
    from aop_mcp.agents.pull import PullQueue

log = logging.getLogger(__name__)

_SHOWN_REPLY = 200  # characters of a reply quoted when it is not what the task wants


class AgentExecutor:
    """Runs `agent` tasks (`AgentRun`): pick an agent, send the input, return its reply.

    `adapters` maps an agent kind (`mcp`, `fast-agent`) to the adapter that talks to it.
    Failures: no slot in time is `unavailable`; the deadline passing while the agent works is
    `timeout`; an adapter's AgentFailure keeps its kind; anything else an adapter raises is
    `agent_error`; a non-JSON reply to an `output: json` task is `invalid_output`.

    Every output names the agent that served the attempt (`TaskOutput.agent`), and so does
    every failure once an agent has the task (it was sent to it, or a pull agent claimed it):
    such a failed attempt carries an output too, empty but for the agent and its duration.
    """

    name = "agent"
    version = "1"

    def __init__(
        self,
        picker: AgentPicker,
        adapters: Mapping[str, AgentAdapter],
        *,
        pull: PullQueue | None = None,
        default_wait: float = 300.0,
    ) -> None:
        """`pull`: where tasks for pull agents are offered; `default_wait`: seconds a task
        without a timeout waits for a free agent (or for a pull agent to claim it)."""
        self._picker = picker
        self._pull = pull
        self._adapters = dict(adapters)
        self._kinds = frozenset(AgentKind(kind) for kind in self._adapters)
        self._default_wait = default_wait

    async def execute(self, request: ExecutionRequest) -> TaskOutput:
        """Run one attempt; return the agent's reply as output or raise AttemptFailed."""
        started = time.perf_counter()
        if self._for_pull_agents(request.spec):
            return await self._offer(request, started)
        now = asyncio.get_running_loop().time()
        deadline = None if request.timeout is None else now + request.timeout
        wait = self._default_wait if request.timeout is None else request.timeout
        lease = await self._acquire(request, now + wait, wait)
        adapter = self._adapter_for(lease)
        ok = True  # a cancelled attempt is no fault of the agent's
        try:
            reply = await _invoke(adapter, lease, request, deadline)
            return _output(reply, request, lease.agent.name, time.perf_counter() - started)
        except AttemptFailed as failure:
            ok = False
            _served_by(failure, lease.agent.name, request, started)
            raise
        finally:
            self._picker.release(lease, ok=ok)

    def _for_pull_agents(self, spec: Any) -> bool:
        """Whether the task goes to pull agents: every agent that could do it is one."""
        if self._pull is None:
            return False
        kinds = self._picker.kinds_of(capability=spec.capability, name=spec.agent)
        return bool(kinds) and kinds <= {AgentKind.PULL}

    async def _offer(self, request: ExecutionRequest, started: float) -> TaskOutput:
        """Offer the task for a pull agent to claim, and wait for its result."""
        assert self._pull is not None
        spec = request.spec
        wait = self._default_wait if request.timeout is None else request.timeout
        claimed: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        try:
            async with asyncio.timeout(wait):
                reply = await self._pull.offer(
                    run_id=request.run_id,
                    task_id=request.task_id,
                    attempt=request.attempt,
                    message=spec.input,
                    capability=spec.capability,
                    agent=spec.agent,
                    claimed=claimed,
                )
        except TimeoutError as exc:
            if not claimed.done():
                message = f"no pull agent claimed it within {wait:g}s"
                raise _failed(FailureKind.UNAVAILABLE, message) from exc
            holder = claimed.result()
            message = f"pull agent {holder!r} did not finish within {wait:g}s"
            late = _failed(FailureKind.TIMEOUT, message)
            raise _served_by(late, holder, request, started) from exc
        except AgentFailure as exc:  # the holder failed it, or let its lease expire
            holder = claimed.result() if claimed.done() else None
            raise _served_by(_failed(exc.kind, exc.message), holder, request, started) from exc
        return _output(reply, request, claimed.result(), time.perf_counter() - started)

    async def _acquire(self, request: ExecutionRequest, until: float, wait: float) -> AgentLease:
        spec = request.spec
        try:
            async with asyncio.timeout_at(until):
                return await self._picker.acquire(
                    capability=spec.capability, name=spec.agent, kinds=self._kinds
                )
        except AopError as exc:  # e.g. no agent has that name: one may be registered later
            raise _failed(FailureKind.UNAVAILABLE, str(exc)) from exc
        except TimeoutError as exc:
            wanted = (
                f"agent {spec.agent!r} was not healthy with a free slot"
                if spec.agent is not None
                else f"no healthy agent with capability {spec.capability!r} had a free slot"
            )
            raise _failed(FailureKind.UNAVAILABLE, f"{wanted} within {wait:g}s") from exc

    def _adapter_for(self, lease: AgentLease) -> AgentAdapter:
        agent = lease.agent
        adapter = self._adapters.get(agent.kind)
        if adapter is None:  # only from a picker that ignored `kinds`: not the agent's fault
            self._picker.release(lease, ok=True)
            kinds = ", ".join(sorted(self._adapters)) or "none"
            raise _failed(
                FailureKind.UNAVAILABLE,
                f"agent {agent.name!r} is of kind {str(agent.kind)!r}, which this server cannot "
                f"send tasks to (it can: {kinds})",
            )
        return adapter


async def _invoke(
    adapter: AgentAdapter, lease: AgentLease, request: ExecutionRequest, deadline: float | None
) -> AgentReply:
    timer = asyncio.timeout_at(deadline)
    try:
        async with timer:
            return await adapter.invoke(lease.agent, request.spec.input)
    except Exception as exc:  # CancelledError is a BaseException: it passes through
        raise _adapter_failure(exc, timer, request, lease.agent.name) from exc


def _adapter_failure(
    exc: Exception, timer: asyncio.Timeout, request: ExecutionRequest, agent: str
) -> AttemptFailed:
    if timer.expired():  # our deadline, whatever the adapter made of its cancellation
        return _failed(
            FailureKind.TIMEOUT, f"agent {agent!r} did not answer within {request.timeout:g}s"
        )
    if isinstance(exc, AgentFailure):
        return _failed(exc.kind, f"agent {agent!r}: {exc.message}")
    # An adapter should turn its driver's errors into AgentFailure; this one did not.
    log.error("agent adapter raised for agent %r", agent, exc_info=exc)
    return _failed(FailureKind.AGENT_ERROR, f"agent {agent!r} failed: {_describe(exc)}")


def _output(
    reply: AgentReply, request: ExecutionRequest, agent: str, duration: float
) -> TaskOutput:
    value = reply.json if reply.json is not None else parse_json(reply.text)
    text = reply.text
    if not text and value is not None:  # a structured-only reply still reads as text
        text = json.dumps(value, ensure_ascii=False)
    stdout, truncated = cap_text(text, request.output_cap)
    if value is not None and _too_big(value, request.output_cap):
        value = None  # like the other executors: a value over the cap is not kept whole
    output = TaskOutput(
        stdout=stdout,
        json=value,
        duration=duration,
        attempt=request.attempt,
        stdout_truncated=truncated,
        cap_bytes=request.output_cap,
        agent=agent,
    )
    if request.spec.output == "json" and value is None:
        raise _failed(FailureKind.INVALID_OUTPUT, _not_json(reply, agent), output)
    return output


def _served_by(
    failure: AttemptFailed, agent: str | None, request: ExecutionRequest, started: float
) -> AttemptFailed:
    """Name the agent in the failure's output (an empty one if it had none); return it.

    So that the attempts an agent failed are listed as its attempts, like the ones it did.
    """
    if agent is None:
        return failure
    if failure.output is None:
        failure.output = TaskOutput(
            duration=time.perf_counter() - started,
            attempt=request.attempt,
            cap_bytes=request.output_cap,
            agent=agent,
        )
    elif failure.output.agent is None:
        failure.output = replace(failure.output, agent=agent)
    return failure


def _too_big(value: Any, cap: int) -> bool:
    try:
        text = json.dumps(value, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError, RecursionError):
        return True  # not JSON at all: nothing the store could keep either
    return len(text.encode()) > cap


def _not_json(reply: AgentReply, agent: str) -> str:
    if reply.json is not None or parse_json(reply.text) is not None:
        return f"the JSON reply of agent {agent!r} is larger than the output cap"
    shown = reply.text if len(reply.text) <= _SHOWN_REPLY else reply.text[:_SHOWN_REPLY] + "…"
    return f"the task wants a JSON reply (output: json), but agent {agent!r} answered {shown!r}"


def _failed(kind: FailureKind, message: str, output: TaskOutput | None = None) -> AttemptFailed:
    return AttemptFailed(TaskError(kind, message), output)


def _describe(exc: BaseException) -> str:
    message = str(exc)
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__
