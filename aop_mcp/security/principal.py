"""Who is calling: a principal with one role, authenticated by a bearer token."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Role(StrEnum):
    ADMIN = "admin"  # everything, including tokens
    OPERATOR = "operator"  # define and run workflows, cancel, retry, replay
    AGENT = "agent"  # claim and complete work (the Agent Manager issue)
    VIEWER = "viewer"  # read only


@dataclass(frozen=True, slots=True)
class Principal:
    token_id: str
    name: str
    role: Role


#: The principal of a local stdio session: its parent process started it, so it is trusted.
LOCAL = Principal(token_id="local", name="stdio", role=Role.ADMIN)
