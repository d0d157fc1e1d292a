"""Jinja2 for the dashboard: where the templates are, the filters they use, one render call.

The templates live in the repository's top-level `templates/`; the wheel carries them inside
the package as `aop_mcp/templates/` (see `[tool.hatch.build]` in pyproject.toml).
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from starlette.responses import HTMLResponse

_PACKAGE = Path(__file__).resolve().parent.parent


def templates_dir() -> Path:
    """The dashboard's templates: inside the installed package, else the source checkout's."""
    packaged = _PACKAGE / "templates"
    if packaged.is_dir():
        return packaged
    return _PACKAGE.parent / "templates"


def ago(at: float | None, now: float | None = None) -> str:
    """`12s ago`, `5m ago`, `3h ago`, `2d ago`; an empty string for no time."""
    if at is None:
        return ""
    seconds = max(0.0, (now if now is not None else time.time()) - at)
    for size, unit in ((86400, "d"), (3600, "h"), (60, "m")):
        if seconds >= size:
            return f"{int(seconds // size)}{unit} ago"
    return f"{int(seconds)}s ago"


def clock_time(at: float | None) -> str:
    """A time as UTC `2026-11-26 14:03:07`, for tooltips and tables."""
    if at is None:
        return ""
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def duration(start: float | None, end: float | None, now: float | None = None) -> str:
    """`850ms`, `12.3s`, `4m 05s`, `2h 03m`; running spans count up to now."""
    if start is None:
        return ""
    seconds = max(0.0, (end if end is not None else (now or time.time())) - start)
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 60:
        return f"{seconds:.1f}s"
    if seconds < 3600:
        return f"{int(seconds // 60)}m {int(seconds % 60):02d}s"
    return f"{int(seconds // 3600)}h {int(seconds % 3600 // 60):02d}m"


def pretty_json(value: Any) -> str:
    """A value as indented JSON, for output panes."""
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True, default=str)


@cache
def environment() -> Environment:
    """The one Jinja2 environment (autoescaping on, undefined names are errors)."""
    env = Environment(
        loader=FileSystemLoader(templates_dir()),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(ago=ago, clock=clock_time, pretty_json=pretty_json)
    env.globals.update(duration=duration)
    return env


def render_text(name: str, context: Mapping[str, Any]) -> str:
    """A template rendered to text (for fragments sent over server-sent events)."""
    return environment().get_template(name).render(context)


#: Every page: scripts only from this server, no framing, no sniffing. Inline styles stay
#: allowed for the timeline's bar positions; inline scripts do not.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; "
        "base-uri 'self'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}


def render(
    name: str,
    context: Mapping[str, Any],
    *,
    status_code: int = 200,
    headers: Mapping[str, str] | None = None,
) -> HTMLResponse:
    """A template as an HTML response, with the dashboard's security headers."""
    return HTMLResponse(
        render_text(name, context),
        status_code=status_code,
        headers={**SECURITY_HEADERS, **(headers or {})},
    )
