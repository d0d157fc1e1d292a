"""The htmx dashboard: server-rendered pages at `/`, the same hub and tokens as the API.

Each page handler reads through the hub's services and renders a template of `templates/`;
htmx (served from `/static`, no CDN) swaps fragments in place, and a run page follows its run
over server-sent events. `dashboard_routes` gives the routes the server mounts before `/mcp`.
"""

from __future__ import annotations

from pathlib import Path

from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from aop_mcp.security.principal import Access
from aop_mcp.streams import EventStreams
from aop_mcp.web.agents import agent_list, agent_page
from aop_mcp.web.auth import GetHub, Handler, dashboard
from aop_mcp.web.dead_letters import dead_letter_list, replay_dead_letter
from aop_mcp.web.live import run_live
from aop_mcp.web.overview import overview, overview_stats
from aop_mcp.web.runs import cancel_run, retry_run, run_list, run_page, task_panel
from aop_mcp.web.signin import signin_routes
from aop_mcp.web.workflows import start_run, workflow_list, workflow_page

STATIC_DIR = Path(__file__).resolve().parent / "static"

__all__ = ["STATIC_DIR", "dashboard_routes"]


def dashboard_routes(get_hub: GetHub, streams: EventStreams) -> list[BaseRoute]:
    """Every route of the dashboard; `streams` ends the live run pages at shutdown."""
    signin = signin_routes(get_hub)

    def page(path: str, handler: Handler, *, methods: tuple[str, ...] = ("GET",)) -> Route:
        access = Access.READ if methods == ("GET",) else Access.WRITE
        return Route(path, dashboard(get_hub, handler, access), methods=list(methods))

    return [
        Route("/signin", signin["show"], methods=["GET"]),
        Route("/signin", signin["submit"], methods=["POST"]),
        Route("/signout", signin["signout"], methods=["POST"]),
        page("/", overview),
        page("/overview/stats", overview_stats),
        page("/workflows", workflow_list),
        page("/workflows/{name}", workflow_page),
        page("/workflows/{name}/runs", start_run, methods=("POST",)),
        page("/runs", run_list),
        page("/runs/{run_id}", run_page),
        page("/runs/{run_id}/live", run_live(streams)),
        page("/runs/{run_id}/tasks/{task_id}", task_panel),
        page("/runs/{run_id}/cancel", cancel_run, methods=("POST",)),
        page("/runs/{run_id}/retry", retry_run, methods=("POST",)),
        page("/agents", agent_list),
        page("/agents/{name}", agent_page),
        page("/dead-letters", dead_letter_list),
        page("/dead-letters/{dead_letter_id}/replay", replay_dead_letter, methods=("POST",)),
        Mount("/static", app=StaticFiles(directory=STATIC_DIR), name="static"),
    ]
