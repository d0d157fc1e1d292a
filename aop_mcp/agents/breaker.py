"""A circuit breaker per agent: stop sending work to an agent that keeps failing.

closed: work flows; each failure counts, a success resets the count. After
`failure_threshold` failures in a row it opens: no work for `cooldown` seconds. Then it is
half open: ONE trial task goes through; its success closes the breaker, its failure opens it
for another cooldown. State is in memory (a restart gives every agent a fresh start) and
time comes from the injected clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from aop_mcp.engine.clock import Clock

FAILURE_THRESHOLD = 3
COOLDOWN_SECONDS = 30.0


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(frozen=True, slots=True)
class BreakerStatus:
    """A snapshot, as AgentStatus shows it."""

    state: BreakerState
    failures: int  # consecutive failures
    open_until: float | None  # when an open breaker lets a trial through
    trial_running: bool = False


class CircuitBreaker:
    """The breaker of one agent."""

    def __init__(
        self,
        clock: Clock,
        *,
        failure_threshold: int = FAILURE_THRESHOLD,
        cooldown: float = COOLDOWN_SECONDS,
    ) -> None:
        self._clock = clock
        self._threshold = failure_threshold
        self._cooldown = cooldown
        self._failures = 0
        self._open_until: float | None = None  # set while open or half open
        self._trial = False  # the half-open trial is out

    @property
    def state(self) -> BreakerState:
        if self._open_until is None:
            return BreakerState.CLOSED
        if self._clock.now() < self._open_until:
            return BreakerState.OPEN
        return BreakerState.HALF_OPEN

    def status(self) -> BreakerStatus:
        """Where the breaker stands now."""
        return BreakerStatus(self.state, self._failures, self._open_until, self._trial)

    def allows(self) -> bool:
        """Whether a new task may go to the agent now."""
        state = self.state
        return state is BreakerState.CLOSED or (state is BreakerState.HALF_OPEN and not self._trial)

    def admit(self) -> bool:
        """Note that a task was sent; True when it is the half-open trial."""
        if self.state is BreakerState.HALF_OPEN and not self._trial:
            self._trial = True
            return True
        return False

    def record(self, ok: bool, *, trial: bool) -> None:
        """Feed the outcome of a task (`trial`: the one `admit` returned True for)."""
        if trial:
            self._trial = False
        if ok:
            # A task sent before the breaker opened proves little: only the trial closes it.
            if trial or self._open_until is None:
                self._failures = 0
                self._open_until = None
            return
        self._failures += 1
        if trial or (self._open_until is None and self._failures >= self._threshold):
            self._open_until = self._clock.now() + self._cooldown
