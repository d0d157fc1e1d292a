"""AgentSpec: what a caller says about an agent, validated once at every door.

The per-kind `config` is validated by the model of its kind (`CONFIG_MODELS`) and kept as a
plain dict, defaults filled in, so the durable `Agent` record never depends on pydantic.
`InvalidAgent` errors name the field at fault (`config.url`, `capabilities`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from aop_mcp.errors import InvalidAgent, Problem
from aop_mcp.models import Agent, AgentKind

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
CAPABILITY_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$"
#: Config keys whose values may hold credentials: views show the keys, never the values.
SECRET_KEYS = ("env", "headers")
HIDDEN = "***"


class _Config(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FastAgentConfig(_Config):
    """An agent run in this process by Fast-Agent."""

    instruction: str | None = Field(
        default=None, min_length=1, description="the agent's system instruction"
    )
    model: str = Field(default="passthrough", description="a Fast-Agent model string")
    servers: list[str] = Field(default_factory=list, description="MCP servers it may use")
    card: str | None = Field(default=None, description="path of a Fast-Agent agent card")

    @model_validator(mode="after")
    def _instruction_or_card(self) -> FastAgentConfig:
        if self.instruction is None and self.card is None:
            raise ValueError("give an `instruction`, or a `card` that has one")
        return self


class McpConfig(_Config):
    """A remote MCP server: one of its tools does the work."""

    url: str | None = Field(default=None, description="streamable HTTP endpoint of the server")
    command: list[str] | None = Field(
        default=None, min_length=1, description="or: the command that starts it over stdio"
    )
    env: dict[str, str] = Field(default_factory=dict, description="environment of `command`")
    headers: dict[str, str] = Field(default_factory=dict, description="HTTP headers for `url`")
    tool: str = Field(min_length=1, description="the tool called with each task's input")
    input_argument: str = Field(
        default="input", min_length=1, description="the tool argument the input goes in"
    )

    @model_validator(mode="after")
    def _one_transport(self) -> McpConfig:
        if (self.url is None) == (self.command is None):
            raise ValueError("give exactly one of `url` (HTTP) or `command` (stdio)")
        return self


class PullConfig(_Config):
    """An agent that claims work itself over MCP and reports heartbeats."""

    heartbeat_interval: float = Field(
        default=30.0, gt=0, description="seconds between the agent's heartbeats"
    )


CONFIG_MODELS: dict[AgentKind, type[_Config]] = {
    AgentKind.FAST_AGENT: FastAgentConfig,
    AgentKind.MCP: McpConfig,
    AgentKind.PULL: PullConfig,
}
#: Kinds the hub pushes tasks to: they must say what they can do.
PUSHED = frozenset({AgentKind.FAST_AGENT, AgentKind.MCP})


class AgentSettings(BaseModel):
    """Everything about an agent but its name (the body of an update)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: AgentKind = Field(description="fast-agent, mcp or pull")
    capabilities: list[str] = Field(
        default_factory=list,
        validate_default=True,
        description="what it can do, e.g. `summarize`; at least one for fast-agent and mcp",
    )
    max_concurrency: int = Field(default=1, ge=1, description="tasks it may run at once")
    weight: int = Field(default=1, ge=1, description="share of work among equally busy agents")
    config: dict[str, Any] = Field(
        default_factory=dict,
        validate_default=True,
        description="by kind. fast-agent: {instruction, model, servers, card}; mcp: {url or "
        "command, env, headers, tool, input_argument}; pull: {heartbeat_interval}",
    )

    @field_validator("capabilities")
    @classmethod
    def _capabilities(cls, value: list[str], info: ValidationInfo) -> list[str]:
        bad = [c for c in value if not _matches(CAPABILITY_PATTERN, c)]
        if bad:
            raise ValueError(f"{bad[0]!r} is not a capability name (letters, digits, _ . : -)")
        if not value and info.data.get("kind") in PUSHED:
            raise ValueError(f"a {info.data['kind']} agent needs at least one capability")
        return list(dict.fromkeys(value))  # keep order, drop repeats

    @field_validator("config")
    @classmethod
    def _config(cls, value: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        kind = info.data.get("kind")
        if kind is None:  # the kind itself is invalid: that error says so
            return value
        return CONFIG_MODELS[kind].model_validate(value).model_dump()


class AgentSpec(AgentSettings):
    """A whole agent: its name and settings."""

    name: str = Field(
        pattern=NAME_PATTERN,
        description="unique; up to 64 letters, digits, _, . or -, starting with one of the first",
    )

    @classmethod
    def named(cls, name: str, settings: AgentSettings) -> AgentSpec:
        """The spec of `settings` under `name`."""
        return parse_spec({"name": name, **settings.model_dump()})

    def same_as(self, agent: Agent) -> bool:
        """True when `agent` is already at this configuration."""
        return spec_of(agent) == self


def _matches(pattern: str, text: str) -> bool:
    return re.fullmatch(pattern, text) is not None


def parse_spec(raw: Mapping[str, Any]) -> AgentSpec:
    """An AgentSpec from plain data; raises InvalidAgent naming each field at fault."""
    try:
        return AgentSpec.model_validate(dict(raw))
    except ValidationError as exc:
        raise InvalidAgent(problems_of(exc)) from exc


def problems_of(exc: ValidationError) -> list[Problem]:
    """Each pydantic error as a Problem naming its dotted field."""
    return [
        Problem(
            ".".join(str(part) for part in error["loc"]) or "spec",
            error["msg"].removeprefix("Value error, "),
        )
        for error in exc.errors(include_url=False)
    ]


def spec_of(agent: Agent) -> AgentSpec:
    """The spec an agent record is at (to compare, or to change a few fields of)."""
    return AgentSpec.model_construct(
        name=agent.name,
        kind=agent.kind,
        capabilities=list(agent.capabilities),
        max_concurrency=agent.max_concurrency,
        weight=agent.weight,
        config=agent.config,
    )


def amended(agent: Agent, changes: Mapping[str, Any]) -> AgentSpec:
    """The agent's spec with the given fields replaced (None means: keep it), validated."""
    current = spec_of(agent).model_dump()
    given = {key: value for key, value in changes.items() if value is not None}
    return parse_spec(current | given)


def public_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """The config as shown to callers: values that may be credentials are hidden."""
    shown = dict(config)
    for key in SECRET_KEYS:
        if isinstance(shown.get(key), Mapping):
            shown[key] = dict.fromkeys(shown[key], HIDDEN)
    return shown
