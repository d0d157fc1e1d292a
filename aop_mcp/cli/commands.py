"""What each `aop` command does: thin calls into the hub's services, then output."""

from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path

from aop_mcp.cli.drive import ctrl_c, progress, wait_or_cancel
from aop_mcp.cli.render import (
    dead_letters_table,
    print_json,
    run_json,
    run_summary,
    runs_table,
    secret_json,
    secrets_table,
    task_outputs,
    to_json,
    token_json,
    tokens_table,
)
from aop_mcp.config import Settings
from aop_mcp.engine.clock import SystemClock
from aop_mcp.errors import AopError
from aop_mcp.hub import Hub, open_hub
from aop_mcp.models import Run, RunStatus
from aop_mcp.ports.store import Store
from aop_mcp.security.principal import Role
from aop_mcp.security.secrets import SecretService, check_name, settings_key
from aop_mcp.security.tokens import TokenService
from aop_mcp.store import open_store
from aop_mcp.workflow import parse_workflow, resolve_inputs

#: Exit code after Ctrl-C, as a shell reports a process killed by SIGINT.
EXIT_INTERRUPTED = 130


class UsageError(AopError):
    """The command line itself is wrong (exit 2)."""

    usage = True


def validate(args: argparse.Namespace) -> int:
    """`aop validate FILE`: parse and check only; no database is opened."""
    document = parse_workflow(Path(args.file))
    count = len(document.tasks)
    print(f"ok: workflow {document.name!r} ({count} task{'s' if count != 1 else ''})")
    return 0


def parse_inputs(pairs: Sequence[str]) -> dict[str, str]:
    """`--input k=v` pairs as a dict of strings (the service converts them to their types)."""
    inputs: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--input {pair!r} is not KEY=VALUE; write e.g. --input name=world")
        inputs[key.strip()] = value
    return inputs


async def run(args: argparse.Namespace, settings: Settings) -> int:
    """`aop run FILE`: define the workflow, start a run, drive it to its end."""
    document = parse_workflow(Path(args.file))
    inputs = parse_inputs(args.input)
    resolve_inputs(document, inputs)  # fail on bad inputs before any database is touched
    async with open_hub(settings, adopt_orphans=False) as hub:
        stored, _ = await hub.workflows.define(document.canonical())
        return await _drive(
            hub, args, lambda: hub.runs.start(stored.name, inputs, version=stored.version)
        )


async def dlq_replay(args: argparse.Namespace, settings: Settings) -> int:
    """`aop dlq replay ID`: run the task again, then drive its run to the end like `aop run`."""
    async with open_hub(settings, adopt_orphans=False) as hub:
        return await _drive(hub, args, lambda: hub.dead_letters.replay(args.dead_letter_id))


async def _drive(hub: Hub, args: argparse.Namespace, begin: Callable[[], Awaitable[Run]]) -> int:
    """Start a run with `begin`, show its progress, wait for its end, report it."""
    with ctrl_c() as interrupted:
        async with progress(hub, enabled=_show_progress(args)) as shown:
            started = await begin()
            shown.follow(started.id)
            ended, cancelled = await wait_or_cancel(hub, started.id, interrupted)
    await _report_run(hub, ended, args.json)
    return EXIT_INTERRUPTED if cancelled else _exit_code(ended)


def _show_progress(args: argparse.Namespace) -> bool:
    # Live lines are for a person watching; logs and pipes get only the summary.
    return bool(args.progress) or sys.stderr.isatty()


def _exit_code(run: Run) -> int:
    return 0 if run.status is RunStatus.SUCCEEDED else 1


async def _report_run(hub: Hub, run: Run, as_json: bool) -> None:
    detail = await hub.runs.get(run.id)
    if as_json:
        print_json(run_json(detail.run, detail.tasks), sys.stdout)
    else:
        print(run_summary(detail.run, detail.tasks))


async def runs_list(args: argparse.Namespace, settings: Settings) -> int:
    """`aop runs list`."""
    if args.limit < 1:
        raise UsageError(f"--limit must be at least 1, got {args.limit}")
    statuses = [RunStatus(s) for s in args.status] if args.status else None
    async with open_hub(settings, adopt_orphans=False) as hub:
        runs = await hub.runs.list(workflow=args.workflow, statuses=statuses, limit=args.limit)
    if args.json:
        print_json(to_json(runs), sys.stdout)
    elif runs:
        print(runs_table(runs))
    else:
        print("no runs", file=sys.stderr)
    return 0


async def runs_show(args: argparse.Namespace, settings: Settings) -> int:
    """`aop runs show RUN_ID`: the summary, then what each task printed."""
    async with open_hub(settings, adopt_orphans=False) as hub:
        detail = await hub.runs.get(args.run_id)
    if args.json:
        print_json(run_json(detail.run, detail.tasks), sys.stdout)
        return 0
    print(run_summary(detail.run, detail.tasks))
    outputs = task_outputs(detail.tasks)
    if outputs:
        print(f"\noutputs:\n{outputs}")
    return 0


async def runs_cancel(args: argparse.Namespace, settings: Settings) -> int:
    """`aop runs cancel RUN_ID`: cancel here, or ask the process that drives the run."""
    async with open_hub(settings, adopt_orphans=False) as hub:
        cancelled = await hub.runs.cancel(args.run_id)
        if hub.engine.drives(args.run_id):
            # This process took the run over (its driver is gone): see the cancel through.
            cancelled = await hub.runs.wait(args.run_id)
    if cancelled.status.finished:
        print(f"run {cancelled.id} {cancelled.status}")
    else:
        print(
            f"cancel requested: run {cancelled.id} is driven by another process, "
            "which cancels it within a few seconds"
        )
    return 0


async def dlq_list(args: argparse.Namespace, settings: Settings) -> int:
    """`aop dlq list`."""
    async with open_hub(settings, adopt_orphans=False) as hub:
        letters = await hub.dead_letters.list(include_replayed=args.all)
    if args.json:
        print_json(to_json(letters), sys.stdout)
    elif letters:
        print(dead_letters_table(letters))
    else:
        print("the dead-letter queue is empty", file=sys.stderr)
    return 0


def serve(args: argparse.Namespace, settings: Settings) -> int:
    """`aop serve`: the server, until SIGINT or SIGTERM."""
    from aop_mcp.server import serve as run_server  # starlette/uvicorn load only here

    settings = replace(
        settings,
        host=args.host if args.host is not None else settings.host,
        port=args.port if args.port is not None else settings.port,
    )
    if not 0 <= settings.port <= 65535:
        raise UsageError(f"--port must be between 0 and 65535, got {settings.port}")
    run_server(settings)
    return 0


async def cache_clear(args: argparse.Namespace, settings: Settings) -> int:
    """`aop cache clear`: every cached task result is removed; the next runs execute."""
    async with _opened_store(settings) as store:
        count = await store.clear_cache()
    print(f"cleared {count} cached result{'s' if count != 1 else ''}")
    return 0


@asynccontextmanager
async def _opened_store(settings: Settings) -> AsyncIterator[Store]:
    """The store alone: tokens, secrets and the cache need no engine started."""
    store = open_store(settings.db)
    await store.open()
    try:
        yield store
    finally:
        await store.close()


@asynccontextmanager
async def _token_service(settings: Settings) -> AsyncIterator[TokenService]:
    async with _opened_store(settings) as store:
        yield TokenService(store, SystemClock())


async def token_create(args: argparse.Namespace, settings: Settings) -> int:
    """`aop token create --role ROLE`: the token on stdout, once; the rest on stderr."""
    async with _token_service(settings) as tokens:
        token, plaintext = await tokens.create(Role(args.role), args.name or "")
    if args.json:
        data = {"id": token.id, "name": token.name, "role": token.role, "token": plaintext}
        print_json(data, sys.stdout)
    else:
        print(plaintext)
    print(
        f"aop: created {token.role} token {token.id} ({token.name}); "
        "copy it now: it will not be shown again",
        file=sys.stderr,
    )
    return 0


async def token_list(args: argparse.Namespace, settings: Settings) -> int:
    """`aop token list`: ids, names, roles and use; never secrets."""
    async with _token_service(settings) as tokens:
        listed = await tokens.list()
    if args.json:
        print_json([token_json(t) for t in listed], sys.stdout)
    elif listed:
        print(tokens_table(listed))
    else:
        print("no tokens", file=sys.stderr)
    return 0


async def token_revoke(args: argparse.Namespace, settings: Settings) -> int:
    """`aop token revoke ID`: the token stops working at once."""
    async with _token_service(settings) as tokens:
        token = await tokens.revoke(args.token_id)
    print(f"revoked token {token.id} ({token.name})")
    return 0


@asynccontextmanager
async def _secret_service(settings: Settings) -> AsyncIterator[SecretService]:
    async with _opened_store(settings) as store:
        yield SecretService(store, SystemClock(), settings_key(settings))


def read_secret_value(name: str) -> str:
    """The value to set, from stdin: prompted and not echoed on a terminal, never from argv."""
    if sys.stdin.isatty():
        return getpass.getpass(f"value of {name}: ")
    value = sys.stdin.read()
    # One trailing newline is the shell's (`echo`, a here-string), not the value's.
    return value.removesuffix("\n").removesuffix("\r")


async def secret_set(args: argparse.Namespace, settings: Settings) -> int:
    """`aop secret set NAME < value`: stores the next version; the value is not printed."""
    name = check_name(args.name)  # before a prompt asks for a value that cannot be stored
    value = read_secret_value(name)
    async with _secret_service(settings) as secrets:
        info = await secrets.set(name, value)
    print(f"set secret {info.name} (version {info.version})")
    return 0


async def secret_list(args: argparse.Namespace, settings: Settings) -> int:
    """`aop secret list`: names, versions and times; never values."""
    async with _secret_service(settings) as secrets:
        listed = await secrets.list()
    if args.json:
        print_json([secret_json(s) for s in listed], sys.stdout)
    elif listed:
        print(secrets_table(listed))
    else:
        print("no secrets", file=sys.stderr)
    return 0


async def secret_delete(args: argparse.Namespace, settings: Settings) -> int:
    """`aop secret delete NAME`."""
    async with _secret_service(settings) as secrets:
        await secrets.delete(args.name)
    print(f"deleted secret {args.name}")
    return 0


async def doctor(args: argparse.Namespace, settings: Settings) -> int:
    """`aop doctor`: one line per check; exit 1 when something the setup needs is missing."""
    from aop_mcp.cli.doctor import diagnose, report

    text, code = report(diagnose(settings, settings.dagger_env))
    print(text)
    return code
