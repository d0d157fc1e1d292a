"""The ready queue: highest priority first, then oldest, within concurrency limits.

Tasks whose next attempt is in the future (retry backoff) wait in a timer heap and join the
queue when their time comes. Both heaps hold plain tuples so the hot path stays cheap.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class ReadyQueue[T]:
    """Items ordered by (-priority, ready_at, insertion); `pop` honours a caller's limit."""

    def __init__(self) -> None:
        self._ready: list[tuple[int, float, int, T]] = []
        self._timers: list[tuple[float, int, int, T]] = []
        self._counter = itertools.count()

    def __len__(self) -> int:
        return len(self._ready) + len(self._timers)

    def push(self, item: T, priority: int, ready_at: float, not_before: float | None) -> None:
        """Queue an item now, or once the clock reaches `not_before`."""
        seq = next(self._counter)
        if not_before is None:
            heapq.heappush(self._ready, (-priority, ready_at, seq, item))
        else:
            heapq.heappush(self._timers, (not_before, -priority, seq, item))

    def release_due(self, now: float) -> None:
        """Move every timer whose time has come into the ready heap."""
        timers = self._timers
        while timers and timers[0][0] <= now:
            not_before, neg_priority, seq, item = heapq.heappop(timers)
            heapq.heappush(self._ready, (neg_priority, not_before, seq, item))

    def next_due(self) -> float | None:
        """When the earliest timer fires, if any."""
        return self._timers[0][0] if self._timers else None

    def pop(self, limit: int, allowed: Callable[[T], bool]) -> list[T]:
        """Take up to `limit` items in order, passing over those `allowed` refuses now.

        Refused items keep their place for the next call (a run at its `max_parallel`).
        """
        taken: list[T] = []
        passed: list[tuple[int, float, int, T]] = []
        ready = self._ready
        while ready and len(taken) < limit:
            entry = heapq.heappop(ready)
            if allowed(entry[3]):
                taken.append(entry[3])
            else:
                passed.append(entry)
        for entry in passed:
            heapq.heappush(ready, entry)
        return taken

    def discard(self, drop: Callable[[T], bool]) -> None:
        """Remove every item (ready or waiting) for which `drop` is true."""
        self._ready = [e for e in self._ready if not drop(e[3])]
        self._timers = [e for e in self._timers if not drop(e[3])]
        heapq.heapify(self._ready)
        heapq.heapify(self._timers)
