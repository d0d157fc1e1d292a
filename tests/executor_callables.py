"""Callables the python executor tests import by their "module:attr" path."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

released = threading.Event()  # lets a blocked sync callable finish once its test is done
cancelled: list[str] = []  # names of async callables that saw their cancellation


def add(a: int, b: int) -> dict[str, int]:
    return {"sum": a + b}


async def greet(name: str) -> str:
    return f"hello {name}"


async def noop() -> None:
    return None


def fail(message: str) -> None:
    raise ValueError(message)


def raise_timeout() -> None:
    raise TimeoutError("the callable's own deadline")


def opaque() -> object:
    return Opaque()


def big(size: int) -> str:
    return "x" * size


def block() -> str:
    released.wait(timeout=30)
    return "released"


async def wait_forever(name: str, started: asyncio.Event | None = None) -> None:
    if started is not None:
        started.set()
    try:
        await asyncio.Event().wait()
    finally:
        cancelled.append(name)


class Opaque:
    def __str__(self) -> str:
        return "<opaque thing>"


class Tools:
    @staticmethod
    def echo(**kwargs: Any) -> dict[str, Any]:
        return kwargs


not_callable = 42
