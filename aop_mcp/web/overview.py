"""The overview page: runs by status, tasks per second, agents by health, dead letters."""

from __future__ import annotations

from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import Response

from aop_mcp.services.overview import Overview
from aop_mcp.web.auth import WebContext
from aop_mcp.web.render import render
from aop_mcp.web.svg_chart import throughput_svg

#: Drawn at about the size the overview's card shows it, so its labels keep their size.
CHART_WIDTH, CHART_HEIGHT = 720, 160


async def overview(request: Request, ctx: WebContext) -> Response:
    """The first page: the platform at a glance (its numbers refresh every few seconds)."""
    return render("overview.html", ctx.page(nav="overview", **await _values(ctx)))


async def overview_stats(request: Request, ctx: WebContext) -> Response:
    """The overview's numbers alone, for the page's periodic refresh."""
    return render("_overview_stats.html", ctx.page(**await _values(ctx)))


async def _values(ctx: WebContext) -> dict[str, object]:
    current = await ctx.hub.overview.get()
    return {"overview": current, "chart": Markup(_chart(current))}


def _chart(current: Overview) -> str:
    buckets = [
        (current.since + index * current.bucket_seconds, count)
        for index, count in enumerate(current.throughput)
    ]
    return throughput_svg(
        buckets,
        bucket_seconds=current.bucket_seconds,
        now=current.until,
        window_seconds=current.until - current.since,
        width=CHART_WIDTH,
        height=CHART_HEIGHT,
    )
