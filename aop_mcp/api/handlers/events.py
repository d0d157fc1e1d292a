"""Handler of `GET /events`: the event log as server-sent events, resumable."""

from __future__ import annotations

from starlette.responses import Response, StreamingResponse

from aop_mcp.api import sse
from aop_mcp.api.operations import Call
from aop_mcp.api.problems import BadRequest

LAST_EVENT_ID = "Last-Event-ID"


def resume_after(call: Call) -> int:
    """The seq to resume after: the `Last-Event-ID` header, else `?after=`, else 0."""
    header = call.request.headers.get(LAST_EVENT_ID)
    if header is None:
        return call.query.after or 0
    if not header.strip().isdigit():
        raise BadRequest(f"{LAST_EVENT_ID} must be the seq of an event (a whole number)")
    return int(header)


async def stream_events(call: Call) -> Response:
    """`GET /events`: every event after the client's last one, then live ones."""
    run_id, after = call.query.run_id, resume_after(call)
    if run_id is not None:
        await call.hub.runs.get(run_id)  # an unknown run is a 404, not an empty stream
    streams: sse.EventStreams = call.request.app.state.event_streams
    body = sse.event_stream(call.hub, streams, run_id=run_id, after=after)
    return StreamingResponse(body, media_type="text/event-stream", headers=sse.HEADERS)
