"""`aop doctor`: what this host has for the configured setup, one line per check.

Each line says ok or missing, what was found, and how to fix what is missing. Nothing here
touches the network: the Dagger line is the diagnosis a dagger task fails with when there
is no engine (`executors.dagger_engine`): a session that answers on 127.0.0.1, or a
`dagger` CLI on PATH with a runner.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from aop_mcp.config import Settings
from aop_mcp.executors.dagger_engine import diagnose_engine
from aop_mcp.executors.local import SYSTEM_PATH
from aop_mcp.security.sandbox import INSTALL_HINT, decide_sandbox


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""
    needed: bool = True  # a missing one makes `aop doctor` exit 1
    mark: str = ""  # instead of ok / missing / warning

    def line(self) -> str:
        mark = self.mark or ("ok" if self.ok else ("missing" if self.needed else "warning"))
        fix = f" (fix: {self.fix})" if self.fix and not self.ok else ""
        return f"{mark:<8} {self.name}: {self.detail}{fix}"


def diagnose(settings: Settings, dagger_env: Mapping[str, str]) -> list[Check]:
    """Every check, in the order `aop doctor` prints them."""
    return [
        sandbox_check(settings),
        _tool_check("setpriv", "kills local tasks when the engine dies"),
        _tool_check("prlimit", "enforces a local task's `limits`"),
        database_check(settings.db),
        dagger_check(dagger_env),
    ]


def sandbox_check(settings: Settings) -> Check:
    decision = decide_sandbox(settings.sandbox, settings.path)
    ok = decision.sandboxed and decision.usable
    fix = "" if decision.mode == "false" else INSTALL_HINT
    # With AOP_SANDBOX=auto or false, running unsandboxed is the configured setup.
    return Check("bubblewrap", ok, decision.describe(), fix, needed=decision.mode == "true")


def _tool_check(program: str, does: str) -> Check:
    found = shutil.which(program, path=SYSTEM_PATH)
    detail = f"{found} ({does})" if found else f"not found on {SYSTEM_PATH} ({does})"
    return Check(program, found is not None, detail, "apt-get install util-linux")


def database_check(db: Path | None) -> Check:
    if db is None:
        return Check("database", True, "in memory (nothing is kept)")
    if db.exists():
        writable = db.is_file() and os.access(db, os.W_OK)
    else:
        parent = _existing_parent(db)
        writable = parent.is_dir() and os.access(parent, os.W_OK | os.X_OK)
    detail = f"{db} is writable" if writable else f"{db} is not writable"
    return Check("database", writable, detail, "set AOP_DB or AOP_DATA_DIR to a writable place")


def _existing_parent(path: Path) -> Path:
    for parent in path.parents:
        if parent.exists():
            return parent
    return Path("/")


def dagger_check(env: Mapping[str, str]) -> Check:
    """Whether dagger tasks have an engine: needed only by workflows that use them."""
    diagnosis = diagnose_engine(env)
    return Check("dagger engine", diagnosis.found, diagnosis.detail, diagnosis.fix, needed=False)


def report(checks: list[Check]) -> tuple[str, int]:
    """The text to print and the exit code: 1 when a needed check is missing."""
    text = "\n".join(check.line() for check in checks)
    return text, 0 if all(c.ok or not c.needed for c in checks) else 1
