"""The `aop` command line: argparse definitions only (commands live in `commands.py`)."""

from __future__ import annotations

import argparse
from importlib.metadata import PackageNotFoundError, version

from aop_mcp.models import RunStatus
from aop_mcp.security.principal import Role


def package_version() -> str:
    """The installed version of aop-mcp."""
    try:
        return version("aop-mcp")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"


def _store_options() -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument(
        "--db",
        metavar="PATH",
        help="SQLite database file (default: $AOP_DB, else aop.db in the data directory); "
        "':memory:' keeps everything in memory",
    )
    return parent


def _json_option() -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument("--json", action="store_true", help="print one JSON document")
    return parent


def _drive_options() -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument(
        "--progress",
        action="store_true",
        help="show live progress on stderr even when it is not a terminal",
    )
    return parent


def build_parser() -> argparse.ArgumentParser:
    """The whole `aop` parser; each command sets `command` to its handler's name."""
    parser = argparse.ArgumentParser(
        prog="aop", description="aop-mcp: an MCP server and durable workflow engine."
    )
    parser.add_argument("--version", action="version", version=f"aop-mcp {package_version()}")
    commands = parser.add_subparsers(dest="group", metavar="COMMAND", required=True)
    store, as_json, drive = _store_options(), _json_option(), _drive_options()
    _add_validate(commands)
    _add_run(commands, [store, as_json, drive])
    _add_runs(commands, store, as_json)
    _add_dlq(commands, store, as_json, drive)
    _add_cache(commands, store)
    _add_serve(commands, store)
    _add_stdio(commands, store)
    _add_token(commands, store, as_json)
    _add_secret(commands, store, as_json)
    _add_doctor(commands, store)
    return parser


Commands = argparse._SubParsersAction  # argparse names no public type for it


def _add_validate(commands: Commands) -> None:
    cmd = commands.add_parser(
        "validate", help="check a workflow file without running it (touches no database)"
    )
    cmd.add_argument("file", help="workflow document (YAML or JSON)")
    cmd.set_defaults(command="validate")


def _add_run(commands: Commands, parents: list[argparse.ArgumentParser]) -> None:
    cmd = commands.add_parser(
        "run", parents=parents, help="define a workflow from a file and run it to its end"
    )
    cmd.add_argument("file", help="workflow document (YAML or JSON)")
    cmd.add_argument(
        "--input",
        "-i",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a run input (repeatable); the value is converted to the declared type",
    )
    cmd.set_defaults(command="run")


def _add_runs(
    commands: Commands, store: argparse.ArgumentParser, as_json: argparse.ArgumentParser
) -> None:
    runs = commands.add_parser("runs", help="list, show and cancel runs")
    sub = runs.add_subparsers(dest="action", metavar="ACTION", required=True)
    listing = sub.add_parser("list", parents=[store, as_json], help="runs, newest first")
    listing.add_argument("--workflow", metavar="NAME", help="only runs of this workflow")
    listing.add_argument(
        "--status",
        action="append",
        choices=[str(s) for s in RunStatus],
        help="only runs in this status (repeatable)",
    )
    listing.add_argument("--limit", type=int, default=50, metavar="N", help="at most N runs")
    listing.set_defaults(command="runs_list")
    show = sub.add_parser("show", parents=[store, as_json], help="a run, its tasks and outputs")
    show.add_argument("run_id", metavar="RUN_ID")
    show.set_defaults(command="runs_show")
    cancel = sub.add_parser("cancel", parents=[store], help="cancel a run that has not ended")
    cancel.add_argument("run_id", metavar="RUN_ID")
    cancel.set_defaults(command="runs_cancel")


def _add_dlq(
    commands: Commands,
    store: argparse.ArgumentParser,
    as_json: argparse.ArgumentParser,
    drive: argparse.ArgumentParser,
) -> None:
    dlq = commands.add_parser("dlq", help="the dead-letter queue: tasks that failed for good")
    sub = dlq.add_subparsers(dest="action", metavar="ACTION", required=True)
    listing = sub.add_parser("list", parents=[store, as_json], help="dead letters, oldest first")
    listing.add_argument("--all", action="store_true", help="include replayed ones")
    listing.set_defaults(command="dlq_list")
    replay = sub.add_parser(
        "replay",
        parents=[store, as_json, drive],
        help="run a dead-lettered task again and drive its run to the end",
    )
    replay.add_argument("dead_letter_id", metavar="ID")
    replay.set_defaults(command="dlq_replay")


def _add_cache(commands: Commands, store: argparse.ArgumentParser) -> None:
    cache = commands.add_parser("cache", help="the result cache of `cache: true` tasks")
    sub = cache.add_subparsers(dest="action", metavar="ACTION", required=True)
    clear = sub.add_parser(
        "clear", parents=[store], help="remove every cached result; prints how many"
    )
    clear.set_defaults(command="cache_clear")


def _add_serve(commands: Commands, store: argparse.ArgumentParser) -> None:
    serve = commands.add_parser(
        "serve", parents=[store], help="run the server (resumes runs a crashed process left)"
    )
    serve.add_argument("--host", help="interface to listen on (default: $AOP_HOST or 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default: $AOP_PORT or 8765; 0: any)")
    serve.set_defaults(command="serve")


def _add_stdio(commands: Commands, store: argparse.ArgumentParser) -> None:
    stdio = commands.add_parser(
        "stdio",
        parents=[store],
        help="run the MCP server over stdin/stdout, for an MCP client that starts it",
    )
    stdio.set_defaults(command="stdio")


def _add_token(
    commands: Commands, store: argparse.ArgumentParser, as_json: argparse.ArgumentParser
) -> None:
    token = commands.add_parser("token", help="bearer tokens: create, list and revoke")
    sub = token.add_subparsers(dest="action", metavar="ACTION", required=True)
    create = sub.add_parser(
        "create", parents=[store, as_json], help="make a token and print it (only this once)"
    )
    create.add_argument(
        "--role", required=True, choices=[str(r) for r in Role], help="what the token may do"
    )
    create.add_argument("--name", help="who or what uses it (default: the role)")
    create.set_defaults(command="token_create")
    listing = sub.add_parser(
        "list", parents=[store, as_json], help="tokens, oldest first (never their secrets)"
    )
    listing.set_defaults(command="token_list")
    revoke = sub.add_parser("revoke", parents=[store], help="stop a token from working")
    revoke.add_argument("token_id", metavar="ID")
    revoke.set_defaults(command="token_revoke")


def _add_secret(
    commands: Commands, store: argparse.ArgumentParser, as_json: argparse.ArgumentParser
) -> None:
    secret = commands.add_parser(
        "secret", help="the hub's secrets (encrypted at rest): set, list and delete"
    )
    sub = secret.add_subparsers(dest="action", metavar="ACTION", required=True)
    set_ = sub.add_parser(
        "set",
        parents=[store],
        help="set a secret to the value read from stdin (prompted, not echoed, on a terminal)",
    )
    set_.add_argument("name", metavar="NAME", help="like an environment variable: API_KEY")
    set_.set_defaults(command="secret_set")
    listing = sub.add_parser(
        "list", parents=[store, as_json], help="secrets by name (never their values)"
    )
    listing.set_defaults(command="secret_list")
    delete = sub.add_parser("delete", parents=[store], help="remove a secret")
    delete.add_argument("name", metavar="NAME")
    delete.set_defaults(command="secret_delete")


def _add_doctor(commands: Commands, store: argparse.ArgumentParser) -> None:
    doctor = commands.add_parser(
        "doctor",
        parents=[store],
        help="check this host for the configured setup: sandbox, tools, database, Dagger",
    )
    doctor.set_defaults(command="doctor")
