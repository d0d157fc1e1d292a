"""The `aop` command: the CLI door of aop-mcp.

Every `AopError` becomes one line per fault on stderr and exit code 2 when the caller's input
is at fault (`err.usage`), 1 otherwise. Only unexpected exceptions show a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence

from aop_mcp.cli.parser import build_parser
from aop_mcp.errors import AopError, InvalidInputs, InvalidWorkflow

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run one `aop` command; returns the process exit code."""
    args = build_parser().parse_args(argv)
    try:
        return _dispatch(args)
    except AopError as err:
        for line in error_lines(err):
            print(f"aop: error: {line}", file=sys.stderr)
        return 2 if err.usage else 1
    except KeyboardInterrupt:
        return 130


def error_lines(err: AopError) -> list[str]:
    """What to tell the user: one line, or one per problem of a document or of inputs."""
    if isinstance(err, InvalidWorkflow) and err.problems:
        return [f"invalid workflow: {problem}" for problem in err.problems]
    if isinstance(err, InvalidInputs) and err.problems:
        return [f"invalid inputs: {problem}" for problem in err.problems]
    return [str(err)]


#: Commands that run their own event loop (a server), rather than one `asyncio.run` here.
_OWN_LOOP = frozenset({"serve"})


def _dispatch(args: argparse.Namespace) -> int:
    # Imported here so `aop --version` and argument errors stay fast.
    from aop_mcp.config import load_settings

    if args.command == "stdio":
        # Straight to the server: an MCP client waits for `initialize`, and the command
        # modules (the hub, the engine) would only add to that wait.
        from aop_mcp.mcp.stdio import run_stdio

        return run_stdio(load_settings().with_db(args.db))
    from aop_mcp.cli import commands

    if args.command == "validate":
        return commands.validate(args)
    settings = load_settings().with_db(args.db)
    handler = getattr(commands, args.command)
    if args.command in _OWN_LOOP:
        return handler(args, settings)
    return asyncio.run(handler(args, settings))
