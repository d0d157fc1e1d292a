"""`aop token ...` and `aop stdio`, driven as a user drives them: real subprocesses."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from aop_mcp.engine.clock import SystemClock
from aop_mcp.security.principal import Principal, Role
from aop_mcp.security.tokens import TokenService
from aop_mcp.store import SqliteStore

TIMEOUT = 60  # seconds any one command may take before the test fails

Aop = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def aop(tmp_path: Path) -> Aop:
    """Run `python -m aop_mcp ARGS...` with its data under tmp_path; returns the process."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AOP_")}
    env["AOP_DATA_DIR"] = str(tmp_path / "data")

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "aop_mcp", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            cwd=tmp_path,
        )

    return run


def verify(db: Path, plaintext: str) -> Principal | None:
    """What the server would make of `plaintext`, checked in-process on the same database."""

    async def check() -> Principal | None:
        store = SqliteStore(db)
        await store.open()
        try:
            return await TokenService(store, SystemClock()).verify(plaintext)
        finally:
            await store.close()

    return asyncio.run(check())


def test_created_token_is_printed_once_and_verifies(tmp_path: Path, aop: Aop) -> None:
    made = aop("token", "create", "--role", "operator", "--name", "ci")
    assert made.returncode == 0, made.stderr
    plaintext = made.stdout.strip()
    assert plaintext.startswith("aop_")
    assert "\n" not in plaintext  # `TOKEN=$(aop token create ...)` gets just the token
    assert "will not be shown again" in made.stderr
    principal = verify(tmp_path / "data" / "aop.db", plaintext)
    assert principal is not None
    assert (principal.name, principal.role) == ("ci", Role.OPERATOR)


def test_created_token_as_json_names_id_role_and_token(tmp_path: Path, aop: Aop) -> None:
    db = tmp_path / "elsewhere.db"
    made = aop("token", "create", "--role", "agent", "--db", str(db), "--json")
    assert made.returncode == 0, made.stderr
    data = json.loads(made.stdout)
    assert set(data) == {"id", "name", "role", "token"}
    assert (data["name"], data["role"]) == ("agent", "agent")
    assert verify(db, data["token"]) == Principal(data["id"], "agent", Role.AGENT)


def test_list_shows_tokens_but_never_their_secrets(aop: Aop) -> None:
    secrets = [
        aop("token", "create", "--role", role, "--name", f"{role}-one").stdout.strip()
        for role in ("admin", "viewer")
    ]
    table = aop("token", "list")
    listed = aop("token", "list", "--json")
    assert table.returncode == listed.returncode == 0, table.stderr + listed.stderr
    assert "admin-one" in table.stdout
    assert "viewer-one" in table.stdout
    rows = json.loads(listed.stdout)
    assert [(r["name"], r["role"]) for r in rows] == [
        ("admin-one", "admin"),
        ("viewer-one", "viewer"),
    ]
    assert all("hash" not in row and "token" not in row for row in rows)
    for secret in secrets:
        assert secret not in table.stdout + table.stderr + listed.stdout + listed.stderr


def test_revoked_token_no_longer_verifies(tmp_path: Path, aop: Aop) -> None:
    data = json.loads(aop("token", "create", "--role", "viewer", "--json").stdout)
    revoked = aop("token", "revoke", data["id"])
    assert revoked.returncode == 0, revoked.stderr
    assert data["id"] in revoked.stdout
    assert verify(tmp_path / "data" / "aop.db", data["token"]) is None
    [row] = json.loads(aop("token", "list", "--json").stdout)
    assert row["revoked_at"] is not None


def test_revoking_an_unknown_token_fails_with_exit_1(aop: Aop) -> None:
    result = aop("token", "revoke", "tok_nope")
    assert result.returncode == 1
    assert "tok_nope" in result.stderr
    assert result.stdout == ""


def test_unknown_role_is_a_usage_error(aop: Aop) -> None:
    result = aop("token", "create", "--role", "superuser")
    assert result.returncode == 2
    assert "invalid choice" in result.stderr
    assert result.stdout == ""


def test_stdio_help_does_not_load_the_mcp_sdk_or_the_web_stack() -> None:
    probe = (
        "import sys\n"
        "from aop_mcp.cli import main\n"
        "try:\n"
        "    main(['stdio', '--help'])\n"
        "except SystemExit as exit:\n"
        "    assert exit.code == 0, exit.code\n"
        "heavy = ('mcp', 'starlette', 'uvicorn')\n"
        "print(sorted(m for m in heavy if m in sys.modules), file=sys.stderr)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=TIMEOUT
    )
    assert result.returncode == 0, result.stderr
    assert "usage: aop stdio" in result.stdout
    assert result.stderr.strip() == "[]", result.stderr
