"""Handlers of the dead-letter queue: list and replay."""

from __future__ import annotations

from starlette.responses import Response

from aop_mcp.api import views
from aop_mcp.api.operations import Call, reply


async def list_dead_letters(call: Call) -> Response:
    """`GET /dead-letters`: oldest first; replayed ones only with `include_replayed`."""
    letters = await call.hub.dead_letters.list(
        run_id=call.query.run_id, include_replayed=call.query.include_replayed
    )
    return reply(views.dead_letters(letters))


async def replay_dead_letter(call: Call) -> Response:
    """`POST /dead-letters/{dead_letter_id}/replay`: the task runs again in its run."""
    run = await call.hub.dead_letters.replay(call.param("dead_letter_id"))
    return reply(views.run(run))
