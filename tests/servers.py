"""Shared helpers for tests that serve or start things: uvicorn in the test's loop, subprocesses.

- `serve_in_loop` runs an ASGI app under uvicorn as a task in the test's event loop, on
  127.0.0.1, and yields a `ServerInLoop` once it listens; `free_port` finds a port nobody uses.
- `spawn` / `spawned` start `python -m aop_mcp ...` with a `clean_env`; `read_until` reads a
  pipe up to a marker, and `stop` ends a process with SIGTERM.

Every wait here is bounded: it fails the test instead of hanging it.
"""

from __future__ import annotations

import asyncio
import os
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import IO, Any

import anyio
import uvicorn

WAIT = 20  # seconds a server in the loop may take to start, or to stop
PROCESS_WAIT = 30  # seconds a subprocess may take to stop


# --- uvicorn in the test's event loop -------------------------------------------------------


class ServerInLoop(uvicorn.Server):
    """uvicorn's server that says when it is listening (or failed to start).

    `before_shutdown`, if given, is called as the server starts to shut down: uvicorn waits
    for open responses before it returns, so a caller ends its endless ones (event streams,
    a tool call held open) there.
    """

    def __init__(
        self, config: uvicorn.Config, before_shutdown: Callable[[], object] | None = None
    ) -> None:
        super().__init__(config)
        self.ready = asyncio.Event()
        self.before_shutdown = before_shutdown

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        try:
            await super().startup(sockets)
        finally:
            self.ready.set()  # also when the lifespan failed: the caller sees `started` False

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        if self.before_shutdown is not None:
            self.before_shutdown()
        await super().shutdown(sockets)

    @property
    def port(self) -> int:
        """The port it listens on (the one the OS chose, for port 0)."""
        return self.servers[0].sockets[0].getsockname()[1]

    @property
    def url(self) -> str:
        """`http://127.0.0.1:PORT`, without a trailing slash."""
        return f"http://{self.config.host}:{self.port}"


@asynccontextmanager
async def serve_in_loop(
    app: Any,
    *,
    port: int = 0,
    before_shutdown: Callable[[], object] | None = None,
    wait: float = WAIT,
    **config: Any,
) -> AsyncIterator[ServerInLoop]:
    """Serve `app` on 127.0.0.1 (a free port unless `port` is given) until the block ends.

    Waits at most `wait` seconds for it to listen (and fails if it did not start), and as
    long again for it to end once the block is left. `config` goes to `uvicorn.Config`; by
    default the lifespan is on, uvicorn's logging untouched, h11 and no websockets.
    """
    options: dict[str, Any] = {"lifespan": "on", "log_config": None, "ws": "none", "http": "h11"}
    server = ServerInLoop(
        uvicorn.Config(app, host="127.0.0.1", port=port, **{**options, **config}),
        before_shutdown,
    )
    task = asyncio.create_task(server.serve())
    try:
        with anyio.fail_after(wait):
            await server.ready.wait()
        assert server.started, "the test server did not start"
        yield server
    finally:
        server.should_exit = True
        with anyio.fail_after(wait):
            await task


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (as the OS saw it just now)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- `python -m aop_mcp` as a subprocess ----------------------------------------------------


#: Local tasks unsandboxed, and allowed over MCP and HTTP (the tests' default).
UNSANDBOXED_ENV = {"AOP_SANDBOX": "false", "AOP_ALLOW_UNSANDBOXED": "true"}


def clean_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """The caller's environment without any AOP_ setting, with data kept under tmp_path.

    `extra` is added last (e.g. `AOP_TOKEN=...`). Local tasks run unsandboxed (and may be
    defined over MCP and HTTP): tests use files under tmp_path, which the sandbox's /tmp hides.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("AOP_")}
    return {**env, "AOP_DATA_DIR": str(tmp_path / "data"), **UNSANDBOXED_ENV, **extra}


def spawn(tmp_path: Path, *args: str, **extra_env: str) -> subprocess.Popen[str]:
    """Start `python -m aop_mcp ARGS...` in tmp_path with a `clean_env`; stdout, stderr piped."""
    return subprocess.Popen(
        [sys.executable, "-m", "aop_mcp", *args],
        env=clean_env(tmp_path, **extra_env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
    )


@contextmanager
def spawned(
    tmp_path: Path, *args: str, seconds: float = PROCESS_WAIT, **extra_env: str
) -> Iterator[subprocess.Popen[str]]:
    """`spawn`, and kill the process when the block ends (reaping it within `seconds`)."""
    proc = spawn(tmp_path, *args, **extra_env)
    try:
        yield proc
    finally:
        proc.kill()
        proc.communicate(timeout=seconds)


def read_until(stream: IO[str], wanted: str, seconds: float) -> str:
    """What `stream` printed up to and including `wanted`; fails after `seconds`.

    Reads the pipe's file descriptor directly, so nothing sits unseen in a buffer.
    """
    deadline = time.monotonic() + seconds
    seen = b""
    while wanted.encode() not in seen:
        left = max(0.0, deadline - time.monotonic())
        ready, _, _ = select.select([stream.fileno()], [], [], left)
        assert ready, f"no {wanted!r} within {seconds}s; got {seen.decode(errors='replace')!r}"
        chunk = os.read(stream.fileno(), 65536)
        assert chunk, f"the stream ended before {wanted!r}; got {seen.decode(errors='replace')!r}"
        seen += chunk
    return seen.decode(errors="replace")


def stop(proc: subprocess.Popen[str], seconds: float = PROCESS_WAIT) -> int:
    """Send SIGTERM and return the exit code; fails if it takes more than `seconds`."""
    proc.send_signal(signal.SIGTERM)
    return proc.wait(timeout=seconds)
