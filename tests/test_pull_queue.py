"""Pull-based work: agents claim offered tasks with a lease, and finish or lose them."""

from __future__ import annotations

import asyncio

import anyio
import pytest

from aop_mcp.agents.pull import ClaimNotFound, LeaseExpired, PullQueue
from aop_mcp.engine import ManualClock
from aop_mcp.models import FailureKind
from aop_mcp.ports.agent import AgentFailure

pytestmark = pytest.mark.anyio
WAIT = 10


def offer(queue: PullQueue, task_id: str, *, capability: str | None = "summarize", agent=None):
    """Start an offer in the background, as the agent executor does."""
    return asyncio.ensure_future(
        queue.offer(
            run_id="run_1",
            task_id=task_id,
            attempt=1,
            message=f"input of {task_id}",
            capability=capability,
            agent=agent,
        )
    )


async def offered(queue: PullQueue, count: int) -> None:
    """Let the offering tasks run: one pass of the loop takes each to its wait."""
    await asyncio.sleep(0)
    assert queue.waiting() == count


async def test_two_agents_claim_distinct_tasks_and_complete_them():
    queue = PullQueue(ManualClock())
    first, second = offer(queue, "a"), offer(queue, "b")
    await offered(queue, 2)
    claim_1 = queue.claim("agent-1", ["summarize"], lease_seconds=30)
    claim_2 = queue.claim("agent-2", ["summarize", "translate"], lease_seconds=30)
    assert queue.claim("agent-3", ["summarize"], lease_seconds=30) is None
    assert {claim_1.task_id, claim_2.task_id} == {"a", "b"}
    assert claim_1.input == "input of a"
    queue.complete("agent-1", claim_1.id, "done a", {"ok": True})
    queue.complete("agent-2", claim_2.id, "done b")
    with anyio.fail_after(WAIT):
        replies = [await first, await second]
    assert [r.text for r in replies] == ["done a", "done b"]
    assert replies[0].json == {"ok": True}


async def test_an_agent_gets_only_work_it_can_do():
    queue = PullQueue(ManualClock())
    waiting = [offer(queue, "t", capability="translate"), offer(queue, "n", agent="only-me")]
    await offered(queue, 2)
    assert queue.claim("other", ["summarize"], lease_seconds=30) is None
    assert queue.claim("other", ["translate"], lease_seconds=30).task_id == "t"
    assert queue.claim("only-me", [], lease_seconds=30).task_id == "n"
    for task in waiting:
        task.cancel()


async def test_an_expired_lease_fails_the_attempt_and_refuses_the_late_result():
    clock = ManualClock()
    queue = PullQueue(clock)
    waiting = offer(queue, "a")
    await offered(queue, 1)
    claim = queue.claim("slow-agent", ["summarize"], lease_seconds=10)
    clock.advance(10)
    with anyio.fail_after(WAIT), pytest.raises(AgentFailure) as failed:
        await waiting
    assert failed.value.kind is FailureKind.TIMEOUT
    with pytest.raises(LeaseExpired):
        queue.complete("slow-agent", claim.id, "too late")


async def test_heartbeat_extends_the_lease():
    clock = ManualClock()
    queue = PullQueue(clock)
    waiting = offer(queue, "a")
    await offered(queue, 1)
    claim = queue.claim("agent", ["summarize"], lease_seconds=10)
    clock.advance(8)
    renewed = queue.heartbeat("agent", claim.id, lease_seconds=10)
    assert renewed.lease_until == clock.now() + 10
    clock.advance(8)  # past the first lease, inside the renewed one
    await asyncio.sleep(0)
    assert not waiting.done()
    queue.complete("agent", claim.id, "in time")
    with anyio.fail_after(WAIT):
        assert (await waiting).text == "in time"


@pytest.mark.parametrize(
    ("retryable", "kind"), [(True, FailureKind.AGENT_ERROR), (False, FailureKind.REJECTED)]
)
async def test_fail_reports_whether_retrying_can_help(retryable, kind):
    queue = PullQueue(ManualClock())
    waiting = offer(queue, "a")
    await offered(queue, 1)
    claim = queue.claim("agent", ["summarize"], lease_seconds=30)
    queue.fail("agent", claim.id, "model refused", retryable=retryable)
    with anyio.fail_after(WAIT), pytest.raises(AgentFailure) as failed:
        await waiting
    assert failed.value.kind is kind
    assert "model refused" in failed.value.message


async def test_claims_are_private_and_end_once():
    queue = PullQueue(ManualClock())
    waiting = offer(queue, "a")
    await offered(queue, 1)
    claim = queue.claim("agent", ["summarize"], lease_seconds=30)
    with pytest.raises(ClaimNotFound):
        queue.complete("intruder", claim.id, "not mine")
    queue.complete("agent", claim.id, "mine")
    with pytest.raises(ClaimNotFound):
        queue.complete("agent", claim.id, "twice")
    with anyio.fail_after(WAIT):
        assert (await waiting).text == "mine"


async def test_a_cancelled_attempt_withdraws_its_offer():
    queue = PullQueue(ManualClock())
    waiting = offer(queue, "a")
    await offered(queue, 1)
    waiting.cancel()
    with anyio.fail_after(WAIT), pytest.raises(asyncio.CancelledError):
        await waiting
    assert queue.waiting() == 0
    assert queue.claim("agent", ["summarize"], lease_seconds=30) is None
