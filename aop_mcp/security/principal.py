"""Who is calling: a principal with one role, authenticated by a bearer token."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Role(StrEnum):
    ADMIN = "admin"  # everything, including tokens
    OPERATOR = "operator"  # define and run workflows, cancel, retry, replay
    AGENT = "agent"  # claim and complete work, report its agent's heartbeat
    VIEWER = "viewer"  # read only


class Access(StrEnum):
    """What a call does, as far as roles are concerned."""

    READ = "read"  # look at anything
    WRITE = "write"  # define, run, cancel, retry, replay; register and change agents
    HEARTBEAT = "heartbeat"  # an agent reporting in: heartbeats, and claiming pull work
    ADMIN = "admin"  # manage the hub itself: secrets


#: The one rule of which role may do what; every door checks callers against it.
ALLOWED: dict[Access, frozenset[Role]] = {
    Access.READ: frozenset(Role),
    Access.WRITE: frozenset({Role.ADMIN, Role.OPERATOR}),
    Access.HEARTBEAT: frozenset({Role.ADMIN, Role.OPERATOR, Role.AGENT}),
    Access.ADMIN: frozenset({Role.ADMIN}),
}


def may(role: Role, access: Access) -> bool:
    """Whether a caller with `role` may make a call of this access."""
    return role in ALLOWED[access]


def allowed_roles(access: Access) -> str:
    """The roles that may, as words: `operator or admin`."""
    names = sorted((str(role) for role in ALLOWED[access]), reverse=True)
    return ", ".join(names[:-1]) + f" or {names[-1]}" if len(names) > 1 else names[0]


def acts_for(principal: Principal, agent: str) -> bool:
    """Whether the caller may speak for `agent`: an agent token only for the agent it is
    named after (`aop token create --role agent --name AGENT`); other roles for any."""
    return principal.role is not Role.AGENT or principal.name == agent


@dataclass(frozen=True, slots=True)
class Principal:
    token_id: str
    name: str
    role: Role


#: The principal of a local stdio session: its parent process started it, so it is trusted.
LOCAL = Principal(token_id="local", name="stdio", role=Role.ADMIN)
