"""Handlers of the dead-letter queue: list and replay."""

from __future__ import annotations

from starlette.responses import Response

from aop_mcp.api import views
from aop_mcp.api.operations import Call, reply


async def list_dead_letters(call: Call) -> Response:
    """`GET /dead-letters`: a page, oldest first; replayed ones only with `include_replayed`."""
    query = call.query
    page = await call.hub.dead_letters.page(
        run_id=query.run_id,
        include_replayed=query.include_replayed,
        limit=query.limit,
        cursor=query.cursor,
    )
    return reply(views.dead_letters(page.letters, page.next_cursor))


async def replay_dead_letter(call: Call) -> Response:
    """`POST /dead-letters/{dead_letter_id}/replay`: the task runs again in its run."""
    run = await call.hub.dead_letters.replay(call.param("dead_letter_id"))
    return reply(views.run(run))
