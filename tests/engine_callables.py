"""Callables that engine tests run through the python executor, by "module:attr" path.

Gates let a test hold a task inside its attempt and release it, without sleeping.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict

gates: dict[str, asyncio.Event] = defaultdict(asyncio.Event)
entered: dict[str, asyncio.Event] = defaultdict(asyncio.Event)
calls: list[str] = []
running: set[str] = set()
peak: list[int] = [0]


def reset() -> None:
    gates.clear()
    entered.clear()
    calls.clear()
    running.clear()
    peak[0] = 0


async def hold(name: str) -> str:
    """Record the call, wait until the test opens gate `name`, return the name."""
    calls.append(name)
    running.add(name)
    peak[0] = max(peak[0], len(running))
    entered[name].set()
    try:
        await gates[name].wait()
    finally:
        running.discard(name)
    return name


async def record(name: str) -> dict[str, str]:
    """Record the call and return at once."""
    calls.append(name)
    return {"name": name}


async def noop() -> None:
    return None
