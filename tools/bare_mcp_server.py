"""The yardstick for tools/bench_mcp.py: a bare MCP SDK server with one trivial tool.

    python tools/bare_mcp_server.py stdio
    python tools/bare_mcp_server.py http PORT

It uses the same SDK, transport settings and uvicorn as `aop serve`, with no store, no
engine and no authentication, so the difference measured is what the hub adds.
"""

from __future__ import annotations

import sys

import anyio
import uvicorn
from mcp.server.mcpserver import MCPServer
from pydantic import BaseModel

server = MCPServer("bare")


class Echo(BaseModel):
    text: str


@server.tool()
def echo(text: str) -> Echo:
    """Return the text given."""
    return Echo(text=text)


def main() -> None:
    mode = sys.argv[1] if len(sys.argv) > 1 else "stdio"
    if mode == "stdio":
        anyio.run(server.run_stdio_async)
        return
    port = int(sys.argv[2])
    app = server.streamable_http_app(streamable_http_path="/mcp", host="127.0.0.1")
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


if __name__ == "__main__":
    main()
