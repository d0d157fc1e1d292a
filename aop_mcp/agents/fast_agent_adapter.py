"""The `fast-agent` agent adapter: an agent is a Fast-Agent agent run in this process.

An agent's config: `instruction`, `model` (a Fast-Agent model string, default `passthrough`),
`servers` (names of MCP servers in the Fast-Agent config file) and optionally `card` (the path
of an AgentCard that defines the agent instead; then the card's instruction, model and
servers are used).

`fast_agent` is imported inside the methods only: the import takes seconds and `aop stdio`
must start without it. Every `invoke` builds the agent and opens a fresh Fast-Agent run
(about 70 ms with the passthrough model): a run kept between tasks would carry the
conversation of one task into the next. Errors of Fast-Agent and of the model stop here as
AgentFailure; a model, key or server that is not configured makes the agent UNAVAILABLE.
"""

from __future__ import annotations

import asyncio
import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aop_mcp.executors.capture import parse_json
from aop_mcp.models import Agent, FailureKind
from aop_mcp.ports.agent import AgentFailure, AgentReply

if TYPE_CHECKING:
    from fast_agent import FastAgent

_AGENT = "task_agent"  # the name the agent gets inside its own Fast-Agent app


class FastAgentAdapter:
    """Runs `fast-agent` agents: one message in, the agent's last text out."""

    kind = "fast-agent"

    def __init__(self, *, config_path: str | Path | None = None) -> None:
        """`config_path`: the Fast-Agent config file (`fast-agent.yaml`) that defines the
        MCP servers agents may use; None lets Fast-Agent look for it as it does itself."""
        self._config_path = str(config_path) if config_path is not None else None

    async def invoke(self, agent: Agent, message: str) -> AgentReply:
        """Send `message` to the agent in a fresh Fast-Agent run and return its reply."""
        await _import_fast_agent()
        fast, name = self._define(agent)
        try:
            async with fast.run() as app:
                response = await app[name].generate(message)
        except SystemExit as exc:  # Fast-Agent reports its config errors by exiting
            raise _failure(exc.__cause__ or exc) from exc
        except Exception as exc:
            raise _failure(exc) from exc
        return _reply(response)

    async def probe(self, agent: Agent) -> None:
        """Check, without calling a model, that the model resolves to a provider with its
        key configured and that every server the agent names is in the config file."""
        await _import_fast_agent()
        fast, name = self._define(agent)
        definition = fast.agents[name]["config"]
        try:
            _check_model(definition.model, fast.config)
        except Exception as exc:
            raise _failure(exc) from exc
        known = set((fast.config.get("mcp") or {}).get("servers") or {})
        missing = [server for server in definition.servers if server not in known]
        if missing:
            raise AgentFailure(
                FailureKind.UNAVAILABLE,
                "MCP servers missing from the Fast-Agent config: " + ", ".join(missing),
            )

    def _define(self, agent: Agent) -> tuple[FastAgent, str]:
        """A Fast-Agent app holding just this agent, and the agent's name in it."""
        try:
            fast = _new_app(agent.name, self._config_path)
            card = agent.config.get("card")
            if card:
                return fast, _load_card(fast, str(card))
            _declare(fast, agent.config)
        except AgentFailure:
            raise
        except SystemExit as exc:  # a config file Fast-Agent cannot parse
            raise _failure(exc.__cause__ or exc) from exc
        except Exception as exc:
            raise _failure(exc) from exc
        return fast, _AGENT


async def _import_fast_agent() -> None:
    """Import Fast-Agent in a worker thread: the first import takes seconds, and the event
    loop runs the engine meanwhile. Later calls find it imported at once."""
    await asyncio.to_thread(importlib.import_module, "fast_agent")


def _new_app(name: str, config_path: str | None) -> FastAgent:
    from fast_agent import FastAgent
    from fast_agent.ui.console import configure_console_stream

    # Fast-Agent's console defaults to stdout, where `aop stdio` speaks MCP.
    configure_console_stream("stderr")
    return FastAgent(
        f"aop-{name}", config_path=config_path, parse_cli_args=False, quiet=True, isolated=True
    )


def _declare(fast: FastAgent, config: dict[str, Any]) -> None:
    @fast.agent(
        name=_AGENT,
        instruction=str(config.get("instruction") or ""),
        model=str(config.get("model") or "passthrough"),
        servers=[str(server) for server in config.get("servers") or ()],
    )
    async def _definition() -> None:  # Fast-Agent's decorators declare agents on functions
        return None


def _load_card(fast: FastAgent, card: str) -> str:
    fast.load_agents(card)
    name = fast.get_default_agent_name()
    if name is None:
        raise AgentFailure(FailureKind.AGENT_ERROR, f"agent card {card!r} defines no agent")
    return name


def _check_model(model: str | None, settings: dict[str, Any]) -> None:
    from fast_agent.llm.model_factory import ModelFactory
    from fast_agent.llm.provider_key_manager import ProviderKeyManager

    if model is None:  # Fast-Agent's own default model applies: nothing to check here
        return
    provider = ModelFactory.parse_model_string(model).provider
    ProviderKeyManager.get_api_key(provider.config_name, settings)


def _reply(response: Any) -> AgentReply:
    from fast_agent.constants import FAST_AGENT_ERROR_CHANNEL
    from fast_agent.types.llm_stop_reason import LlmStopReason

    text = response.last_text() or ""
    if response.stop_reason == LlmStopReason.ERROR:
        details = (response.channels or {}).get(FAST_AGENT_ERROR_CHANNEL) or []
        detail = " ".join(getattr(block, "text", "") for block in details) or text
        raise AgentFailure(FailureKind.AGENT_ERROR, f"the model failed: {detail}")
    return AgentReply(text=text, json=parse_json(text))


def _failure(exc: BaseException) -> AgentFailure:
    if isinstance(exc, AgentFailure):
        return exc
    kind = FailureKind.UNAVAILABLE if _not_configured(exc) else FailureKind.AGENT_ERROR
    message = " ".join(str(exc).split()) or type(exc).__name__
    return AgentFailure(kind, f"Fast-Agent: {message}")


def _not_configured(exc: BaseException) -> bool:
    """Fast-Agent's errors for what is not configured (model, key, server): no retry helps
    until an operator acts, and the agent cannot take tasks meanwhile."""
    from fast_agent.core.exceptions import (
        ModelConfigError,
        ProviderKeyError,
        ServerConfigError,
        ServerInitializationError,
    )

    not_configured = (ModelConfigError, ProviderKeyError, ServerConfigError)
    return isinstance(exc, (*not_configured, ServerInitializationError))
