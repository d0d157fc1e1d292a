"""Run the official MCP conformance suite (@modelcontextprotocol/conformance) against the hub.

    uv run python tools/run_conformance.py [--scenario NAME] [-- extra conformance args]

It installs the suite and the Node it needs (22; pinned in tools/conformance/package.json)
with `npm ci` on first use, serves the real `aop serve` app on a free loopback port with a
fresh database, and runs `conformance server` against `/mcp`. The suite cannot send a bearer
token, so the server is wrapped in an ASGI layer that adds the token to each request: the
app under test, its authentication included, is the real one. Scenarios that need fixtures
this server does not have (tools named `test_simple_text` and the like) are listed, with
the reason, in tools/conformance/expected-failures.yaml; every other one must pass.
"""

from __future__ import annotations

import argparse
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import uvicorn

from aop_mcp.config import Settings
from aop_mcp.server import create_app

HERE = Path(__file__).parent / "conformance"
BIN = HERE / "node_modules" / ".bin"


class WithBearer:
    """ASGI middleware: adds `Authorization: Bearer TOKEN` to every HTTP request."""

    def __init__(self, app, token: str) -> None:
        self._app = app
        self._header = (b"authorization", f"Bearer {token}".encode())

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http":
            headers = [h for h in scope["headers"] if h[0] != b"authorization"]
            scope = {**scope, "headers": [*headers, self._header]}
        await self._app(scope, receive, send)


def install() -> None:
    if not (BIN / "conformance").exists():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=HERE, check=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(data_dir: Path, port: int) -> uvicorn.Server:
    token = "aop_conformance_" + secrets.token_urlsafe(16)
    settings = Settings(data_dir=data_dir, db=data_dir / "aop.db", port=port, token=token)
    app = WithBearer(create_app(settings), token)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:  # uvicorn sets this once it listens
        if not thread.is_alive():
            raise SystemExit("the server did not start")
        time.sleep(0.05)
    return server


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", help="run one scenario instead of the active suite")
    args, extra = parser.parse_known_args()
    install()
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="aop-conformance-") as tmp:
        server = start_server(Path(tmp), port)
        command = [str(BIN / "conformance"), "server", "--url", f"http://127.0.0.1:{port}/mcp"]
        if args.scenario:
            command += ["--scenario", args.scenario]
        else:
            command += ["--expected-failures", str(HERE / "expected-failures.yaml")]
        env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
        try:
            return subprocess.run([*command, *extra], env=env, check=False).returncode
        finally:
            server.should_exit = True


if __name__ == "__main__":
    sys.exit(main())
