"""The dead-letter page: tasks that failed for good, newest first, and replaying them."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from aop_mcp.web.auth import WebContext, go_to
from aop_mcp.web.render import render

PAGE_SIZE = 25


async def dead_letter_list(request: Request, ctx: WebContext) -> Response:
    """Dead letters waiting for a replay (or all, with `?all=1`), a page at a time."""
    include_replayed = request.query_params.get("all") == "1"
    cursor = request.query_params.get("cursor") or None
    page = await ctx.hub.dead_letters.page(
        include_replayed=include_replayed, newest_first=True, limit=PAGE_SIZE, cursor=cursor
    )
    return render(
        "dead_letters.html",
        ctx.page(
            nav="dead_letters",
            letters=page.letters,
            next_cursor=page.next_cursor,
            first_page=cursor is None,
            include_replayed=include_replayed,
        ),
    )


async def replay_dead_letter(request: Request, ctx: WebContext) -> Response:
    """Replay one dead letter: its task runs again in its run; go to that run."""
    run = await ctx.hub.dead_letters.replay(request.path_params["dead_letter_id"])
    return go_to(request, f"/runs/{run.id}")
