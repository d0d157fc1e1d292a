"""`GET /api/v1/events` as a client sees it: live events, resumed without gaps or duplicates."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

import anyio
import engine_callables as calls
import httpx2
import pytest
from api_support import WAIT, ApiServer, serving

from aop_mcp.api.sse import EventStreams, event_stream
from aop_mcp.models import Changes, NewEvent, Run, RunStatus
from aop_mcp.ports.events import InMemoryEventBus
from aop_mcp.store import MemoryStore

pytestmark = pytest.mark.anyio


def held(task_id: str, **fields: Any) -> dict[str, Any]:
    run = {"executor": "python", "function": "engine_callables:hold", "args": {"name": task_id}}
    return {"id": task_id, "run": run, **fields}


TWO_STEPS = {"name": "two-steps", "tasks": [held("first"), held("second", needs=["first"])]}
QUICK = {
    "name": "quick",
    "tasks": [{"id": "only", "run": {"executor": "python", "function": "engine_callables:noop"}}],
}


@pytest.fixture(autouse=True)
def _fresh_callables() -> None:
    calls.reset()


@pytest.fixture
async def api(tmp_path) -> AsyncIterator[ApiServer]:
    async with serving(tmp_path) as server:
        yield server


async def start(client: httpx2.AsyncClient, document: dict[str, Any]) -> str:
    assert (await client.post("/workflows", json=document)).status_code in (200, 201)
    response = await client.post(f"/workflows/{document['name']}/runs", json={})
    assert response.status_code == 201, response.text
    return response.json()["id"]


async def read_until(
    messages: AsyncIterator[httpx2.ServerSentEvent],
    seen: list[httpx2.ServerSentEvent],
    event_type: str,
    task: str | None = None,
) -> None:
    """Append messages to `seen` up to an event of `event_type` (for `task`)."""
    with anyio.fail_after(WAIT):
        async for message in messages:
            seen.append(message)
            if message.event == event_type and message.json()["task_id"] == task:
                return
    raise AssertionError(f"the stream ended before {event_type} of {task}")


def as_stored(message: httpx2.ServerSentEvent) -> tuple[int, str, str | None, dict[str, Any]]:
    data = message.json()
    assert message.id == str(data["seq"])
    assert message.event == data["type"]
    return data["seq"], data["type"], data["task_id"], data["data"]


async def test_a_run_is_streamed_live_and_resumed_after_a_disconnect(api: ApiServer) -> None:
    async with api.client() as client:
        run_id = await start(client, TWO_STEPS)
        first_read: list[httpx2.ServerSentEvent] = []
        async with client.sse("/events", params={"run_id": run_id}) as source:
            assert source.response.status_code == 200
            messages = aiter(source)
            await read_until(messages, first_read, "task.started", "first")
            calls.gates["first"].set()
            await read_until(messages, first_read, "task.started", "second")
        # Disconnected midway: the run goes on and its events are stored meanwhile.
        calls.gates["second"].set()
        with anyio.fail_after(WAIT):
            await api.hub.runs.wait(run_id)
        second_read: list[httpx2.ServerSentEvent] = []
        resume = {"Last-Event-ID": first_read[-1].id}
        async with client.sse("/events", params={"run_id": run_id}, headers=resume) as source:
            await read_until(aiter(source), second_read, "run.succeeded")
    stored = await api.hub.store.list_events(run_id=run_id)
    got = [as_stored(message) for message in first_read + second_read]
    assert got == [(e.seq, e.type, e.task_id, json.loads(json.dumps(e.data))) for e in stored]
    assert any(message.event == "task.succeeded" for message in second_read)


async def test_every_event_is_streamed_from_after_and_events_carry_iso_times(api) -> None:
    async with api.client() as client:
        runs = [await start(client, QUICK) for _ in range(2)]
        for run_id in runs:
            with anyio.fail_after(WAIT):
                await api.hub.runs.wait(run_id)
        stored = await api.hub.store.list_events()
        seen: list[httpx2.ServerSentEvent] = []
        params = {"after": str(stored[0].seq)}
        async with client.sse("/events", params=params) as source:
            with anyio.fail_after(WAIT):
                async for message in source:
                    seen.append(message)
                    if len(seen) == len(stored) - 1:
                        break
    assert [int(message.id) for message in seen] == [e.seq for e in stored[1:]]
    assert {message.json()["run_id"] for message in seen} == set(runs)
    assert seen[0].json()["at"].endswith(("Z", "+00:00"))


async def test_a_quiet_stream_sends_heartbeat_comments(tmp_path) -> None:
    async with (
        serving(tmp_path, heartbeat=0.05) as api,
        api.client() as client,
        client.stream("GET", "/events") as response,
    ):
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["cache-control"] == "no-cache"
        with anyio.fail_after(WAIT):
            async for line in response.aiter_lines():
                if line.startswith(":"):
                    break
    assert line == ": keep-alive"


async def test_open_streams_end_when_the_server_shuts_down(tmp_path) -> None:
    connected, ended = anyio.Event(), anyio.Event()

    async def listen(client: httpx2.AsyncClient) -> None:
        async with client, client.sse("/events") as source:
            connected.set()
            async for _ in source:
                pass
        ended.set()

    async with anyio.create_task_group() as tasks:
        async with serving(tmp_path) as api:
            tasks.start_soon(listen, api.client())
            with anyio.fail_after(WAIT):
                await connected.wait()
        # Leaving `serving` waited for the server to stop, which needs the stream closed.
        with anyio.fail_after(WAIT):
            await ended.wait()


async def test_stream_requests_are_checked_before_streaming(api) -> None:
    async with api.client() as client:
        unknown = await client.get("/events", params={"run_id": "run_nope"})
        assert unknown.status_code == 404
        assert unknown.headers["content-type"] == "application/problem+json"
        bad = await client.get("/events", headers={"Last-Event-ID": "yesterday"})
        assert bad.status_code == 400
        assert "Last-Event-ID" in bad.json()["detail"]
    async with api.client(token=None) as anonymous:
        assert (await anonymous.get("/events")).status_code == 401


async def test_a_stream_that_falls_behind_the_bus_reads_the_log_instead() -> None:
    store, bus = MemoryStore(), InMemoryEventBus(queue_size=2)
    await store.open()
    run = Run("run_1", "w", 1, RunStatus.PENDING, {}, created_at=0.0)
    await store.create_run(run, [], [])

    async def emit(count: int) -> None:
        changes = Changes(events=[NewEvent("run_1", "task.note", 0.0) for _ in range(count)])
        bus.publish(await store.commit(changes))

    await emit(1)
    streams = EventStreams(heartbeat=WAIT)
    stream = event_stream(SimpleNamespace(store=store, bus=bus), streams, run_id=None, after=0)
    with anyio.fail_after(WAIT):
        first = await anext(stream)  # from the log; the stream is subscribed from now on
        await emit(5)  # the bus keeps only the last 2 of these for the stream
        rest = [await anext(stream) for _ in range(5)]
        streams.close()
        with pytest.raises(StopAsyncIteration):
            await anext(stream)
    seqs = [int(m.decode().split("\n")[0].removeprefix("id: ")) for m in [first, *rest]]
    assert seqs == [event.seq for event in await store.list_events()]
    await store.close()
