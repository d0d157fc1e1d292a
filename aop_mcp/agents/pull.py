"""Pull-based work: agent tasks that agents claim over MCP instead of being pushed to them.

The `agent` executor offers a task here and waits. An agent calls `claim` with what it can
do and gets the oldest matching offer with a lease; `heartbeat` extends the lease;
`complete` or `fail` ends it and wakes the waiting executor. A lease that runs out ends the
attempt as failed (kind `timeout`): the engine's retry policy puts the task back, and the
late agent's `complete` is refused. Offers live in memory: the attempt that waits on one is
durable, and after a crash the engine retries it, which makes a new offer.
"""

from __future__ import annotations

import asyncio
import secrets
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from aop_mcp.engine.clock import Clock
from aop_mcp.errors import Conflict, NotFound
from aop_mcp.models import FailureKind
from aop_mcp.ports.agent import AgentFailure, AgentReply

#: Expired claim ids remembered to answer a late agent with LeaseExpired, not "unknown".
_EXPIRED_KEPT = 10_000


class ClaimNotFound(NotFound):
    def __init__(self, claim_id: str) -> None:
        super().__init__(f"no claim {claim_id!r}: it was never made or has already ended")
        self.claim_id = claim_id


class LeaseExpired(Conflict):
    def __init__(self, claim_id: str) -> None:
        super().__init__(
            f"the lease of claim {claim_id!r} expired before this call, so the task went back "
            "to the engine; drop this result and claim new work"
        )
        self.claim_id = claim_id


@dataclass(frozen=True, slots=True)
class Claim:
    """What a claiming agent gets: the task's input and the lease it holds on it."""

    id: str
    run_id: str
    task_id: str
    attempt: int
    input: str
    capability: str | None
    lease_until: float


@dataclass(eq=False)
class _Offer:
    run_id: str
    task_id: str
    attempt: int
    input: str
    capability: str | None
    agent: str | None  # only this agent may claim it
    reply: asyncio.Future[AgentReply]
    claimed: asyncio.Future[str] | None = None
    claim: Claim | None = None
    holder: str | None = None
    expiry: asyncio.Task[None] | None = field(default=None, repr=False)


class PullQueue:
    """Offers waiting for a pull agent, and the claims agents hold on them."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._waiting: list[_Offer] = []  # oldest first
        self._claimed: dict[str, _Offer] = {}
        self._expired: OrderedDict[str, None] = OrderedDict()  # to refuse late calls clearly
        self._offered = asyncio.Event()  # set (and replaced) whenever a new offer arrives

    async def offer(
        self,
        *,
        run_id: str,
        task_id: str,
        attempt: int,
        message: str,
        capability: str | None,
        agent: str | None,
        claimed: asyncio.Future[str] | None = None,
    ) -> AgentReply:
        """Offer a task to pull agents and wait for its result; raises AgentFailure.

        `claimed` gets the name of the agent that claims it, when one does. Cancelling the
        wait withdraws the offer (and voids its claim, if it has one).
        """
        reply: asyncio.Future[AgentReply] = asyncio.get_running_loop().create_future()
        offer = _Offer(run_id, task_id, attempt, message, capability, agent, reply, claimed)
        self._waiting.append(offer)
        self._offered.set()
        self._offered = asyncio.Event()
        try:
            return await reply
        finally:
            self._withdraw(offer)

    def waiting(self) -> int:
        """How many offers no agent has claimed yet."""
        return len(self._waiting)

    def claim(self, agent: str, capabilities: Sequence[str], lease_seconds: float) -> Claim | None:
        """The oldest offer this agent may take, now leased to it; None when there is none."""
        for offer in self._waiting:
            if _matches(offer, agent, capabilities):
                self._waiting.remove(offer)
                if offer.claimed is not None and not offer.claimed.done():
                    offer.claimed.set_result(agent)
                return self._lease(offer, agent, lease_seconds)
        return None

    async def claim_within(
        self, agent: str, capabilities: Sequence[str], lease_seconds: float, wait: float
    ) -> Claim | None:
        """`claim`, waiting up to `wait` seconds for an offer when none is there (long poll)."""
        try:
            async with asyncio.timeout(wait):
                while (claim := self.claim(agent, capabilities, lease_seconds)) is None:
                    await self._offered.wait()
                return claim
        except TimeoutError:
            return None

    def heartbeat(self, agent: str, claim_id: str, lease_seconds: float) -> Claim:
        """Extend a claim's lease; raises ClaimNotFound or LeaseExpired."""
        offer = self._held(agent, claim_id)
        self._cancel_expiry(offer)
        return self._lease(offer, agent, lease_seconds, claim_id)

    def complete(self, agent: str, claim_id: str, text: str, json: Any = None) -> None:
        """End a claim with the agent's result; the waiting attempt succeeds."""
        offer = self._end(agent, claim_id)
        offer.reply.set_result(AgentReply(text=text, json=json))

    def fail(self, agent: str, claim_id: str, message: str, retryable: bool) -> None:
        """End a claim as failed; `retryable=False` fails the task for good."""
        offer = self._end(agent, claim_id)
        kind = FailureKind.AGENT_ERROR if retryable else FailureKind.REJECTED
        offer.reply.set_exception(AgentFailure(kind, f"agent {agent!r}: {message}"))

    # ----------------------------------------------------------------------------------

    def _lease(
        self, offer: _Offer, agent: str, lease_seconds: float, claim_id: str | None = None
    ) -> Claim:
        claim = Claim(
            id=claim_id or "clm_" + secrets.token_hex(8),
            run_id=offer.run_id,
            task_id=offer.task_id,
            attempt=offer.attempt,
            input=offer.input,
            capability=offer.capability,
            lease_until=self._clock.now() + lease_seconds,
        )
        offer.claim, offer.holder = claim, agent
        self._claimed[claim.id] = offer
        offer.expiry = asyncio.create_task(self._expire_at(offer, claim.id, claim.lease_until))
        return claim

    async def _expire_at(self, offer: _Offer, claim_id: str, deadline: float) -> None:
        await self._clock.sleep_until(deadline)
        if self._claimed.get(claim_id) is not offer or offer.reply.done():
            return
        del self._claimed[claim_id]
        self._expired[claim_id] = None
        if len(self._expired) > _EXPIRED_KEPT:
            self._expired.popitem(last=False)
        message = f"agent {offer.holder!r} let its lease on the task expire"
        offer.reply.set_exception(AgentFailure(FailureKind.TIMEOUT, message))

    def _held(self, agent: str, claim_id: str) -> _Offer:
        offer = self._claimed.get(claim_id)
        if offer is None:
            if claim_id in self._expired:
                raise LeaseExpired(claim_id)
            raise ClaimNotFound(claim_id)
        if offer.holder != agent:
            raise ClaimNotFound(claim_id)  # another agent's claim: do not say more
        return offer

    def _end(self, agent: str, claim_id: str) -> _Offer:
        offer = self._held(agent, claim_id)
        del self._claimed[claim_id]
        self._cancel_expiry(offer)
        return offer

    def _withdraw(self, offer: _Offer) -> None:
        if offer in self._waiting:
            self._waiting.remove(offer)
        if offer.claim is not None and self._claimed.get(offer.claim.id) is offer:
            del self._claimed[offer.claim.id]
        self._cancel_expiry(offer)

    @staticmethod
    def _cancel_expiry(offer: _Offer) -> None:
        if offer.expiry is not None:
            offer.expiry.cancel()
            offer.expiry = None


def _matches(offer: _Offer, agent: str, capabilities: Sequence[str]) -> bool:
    if offer.agent is not None:
        return offer.agent == agent
    return offer.capability is not None and offer.capability in capabilities
