"""Whether `local` tasks run inside bubblewrap: decided once, when the hub starts.

`AOP_SANDBOX=auto` (the default) sandboxes when `bwrap` is on the tasks' PATH and runs
unsandboxed otherwise; `true` always sandboxes (tasks fail with a clear error where bubblewrap
is missing); `false` never does.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from typing import Literal

SandboxMode = Literal["auto", "true", "false"]
INSTALL_HINT = "apt-get install bubblewrap"


@dataclass(frozen=True, slots=True)
class SandboxDecision:
    """Whether local tasks are sandboxed, where bwrap is, and why."""

    mode: SandboxMode
    sandboxed: bool
    bwrap: str | None

    @property
    def usable(self) -> bool:
        """False when the sandbox is required but bubblewrap is missing."""
        return not self.sandboxed or self.bwrap is not None

    def describe(self) -> str:
        """One line for the server's start-up log and `aop doctor`."""
        if self.sandboxed and self.bwrap is not None:
            return f"local tasks are sandboxed with bubblewrap ({self.bwrap})"
        if self.sandboxed:
            return (
                "AOP_SANDBOX=true but bubblewrap (bwrap) is not installed: local tasks fail "
                f"until you `{INSTALL_HINT}` (or set AOP_SANDBOX=auto)"
            )
        if self.mode == "false":
            return "local tasks are NOT sandboxed: AOP_SANDBOX=false"
        return (
            "local tasks are NOT sandboxed: bubblewrap (bwrap) is not installed; "
            f"`{INSTALL_HINT}` to sandbox them"
        )


def decide_sandbox(mode: SandboxMode, path: str) -> SandboxDecision:
    """The decision for `mode`, looking for `bwrap` on `path` (the tasks' PATH)."""
    bwrap = shutil.which("bwrap", path=path) if mode != "false" else None
    sandboxed = mode == "true" or (mode == "auto" and bwrap is not None)
    return SandboxDecision(mode=mode, sandboxed=sandboxed, bwrap=bwrap)
