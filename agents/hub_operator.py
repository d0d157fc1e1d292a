"""Run the hub's Fast-Agent agents (the AgentCards in cards/) with a real model.

    uv run python agents/hub_operator.py --model sonnet          # chat with hub_operator
    uv run python agents/hub_operator.py --model sonnet -m "Make a workflow that ..."
    uv run python agents/hub_operator.py --model sonnet --agent hub_worker -m "Start working."

Fast-Agent itself reads `--model`, `--agent`, `-m/--message` and `--quiet` from the command
line. fast-agent.yaml beside this file connects the agents to the hub (server `aop`).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from fast_agent import FastAgent

HERE = Path(__file__).resolve().parent

# Fast-Agent keeps its session history in its home: agents/.fast-agent, wherever this runs.
fast = FastAgent(
    "aop-hub-agents", config_path=str(HERE / "fast-agent.yaml"), home=HERE / ".fast-agent"
)
fast.load_agents(HERE / "cards")


async def main() -> None:
    async with fast.run() as app:  # with -m, Fast-Agent sends the message and exits here
        await app.interactive(agent_name=getattr(fast.args, "agent", None))


if __name__ == "__main__":
    asyncio.run(main())
