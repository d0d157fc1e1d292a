"""The MCP tools, resources and prompt as a client sees them: in-process, through the SDK client.

The hub runs on a real SQLite file; both protocol eras are driven where they differ
(`mcp.Client` speaks 2026-07-28 unless `mode="legacy"`, which does the 2025-11-25 handshake).
"""

from __future__ import annotations

import warnings
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import mcp_types as types
import pytest
from engine_support import hub_on
from mcp import Client
from mcp_support import (
    HELLO,
    SLOW,
    WAIT,
    call,
    data,
    failing,
    needs_flag,
    resource_json,
    resource_text,
)

from aop_mcp.mcp.prompts import EXAMPLE
from aop_mcp.mcp.server import McpDoor, create_mcp
from aop_mcp.workflow import parse_workflow

pytestmark = pytest.mark.anyio

MODES = ["auto", "legacy"]


@pytest.fixture
async def door(tmp_path: Path) -> AsyncIterator[McpDoor]:
    async with hub_on(tmp_path) as hub:
        served = create_mcp()
        async with served.attached(hub):
            yield served


@pytest.fixture(params=MODES)
async def client(request: pytest.FixtureRequest, door: McpDoor) -> AsyncIterator[Client]:
    async with Client(door.server, mode=request.param) as connected:
        yield connected


async def run_to_end(client: Client, workflow: str, **inputs: Any) -> dict[str, Any]:
    started = await call(client, "run_start", workflow=workflow, inputs=inputs)
    ended = await call(client, "run_wait", run_id=started["id"], timeout_seconds=WAIT)
    assert ended["finished"], ended
    return ended


# --- listing ----------------------------------------------------------------------------------


async def test_every_tool_has_a_description_and_an_output_schema(client: Client) -> None:
    tools = (await client.list_tools()).tools
    names = {tool.name for tool in tools}
    assert names == {
        "workflow_define", "workflow_validate", "workflow_list", "workflow_get",
        "run_start", "run_status", "run_wait", "run_list", "run_cancel", "run_retry",
        "task_get", "task_list", "task_logs", "dlq_list", "dlq_replay",
        "agent_register", "agent_update", "agent_deregister", "agent_list", "agent_get",
        "agent_heartbeat", "task_claim", "task_heartbeat", "task_complete", "task_fail",
        "secret_set", "secret_list", "secret_delete",
    }  # fmt: skip
    for tool in tools:
        assert len(tool.description or "") > 60, tool.name
        assert tool.output_schema is not None, tool.name
        assert "ctx" not in tool.input_schema.get("properties", {}), tool.name


async def test_server_explains_its_tools_in_its_instructions(client: Client) -> None:
    assert client.instructions is not None
    assert "run_wait" in client.instructions


# --- workflows --------------------------------------------------------------------------------


async def test_define_accepts_yaml_text_and_an_object(client: Client) -> None:
    first = await call(client, "workflow_define", document=HELLO)
    assert first == {"name": "hello", "version": 1, "created": True, "task_count": 3}
    again = await call(client, "workflow_define", document=HELLO)
    assert again["created"] is False
    assert again["version"] == 1
    as_object = await call(client, "workflow_define", document=SLOW)
    assert as_object == {"name": "slow", "version": 1, "created": True, "task_count": 1}
    listed = await call(client, "workflow_list")
    assert [w["name"] for w in listed["workflows"]] == ["hello", "slow"]
    got = await call(client, "workflow_get", name="hello")
    assert got["version"] == 1
    assert got["document"]["tasks"][0]["id"] == "greet"


async def test_validate_names_the_task_and_field_of_every_problem(client: Client) -> None:
    document = {
        "name": "broken",
        "tasks": [
            {"id": "a", "run": {"executor": "local"}},
            {"id": "b", "needs": ["nope"], "run": {"executor": "local", "command": ["true"]}},
        ],
    }
    checked = await call(client, "workflow_validate", document=document)
    assert checked["valid"] is False
    where = {(p["task"], p["field"]) for p in checked["problems"]}
    assert ("a", "run.command") in where
    ok = await call(client, "workflow_validate", document=HELLO)
    assert ok == {"valid": True, "name": "hello", "task_count": 3, "problems": []}


async def test_define_of_an_invalid_document_is_an_error_listing_each_problem(
    client: Client,
) -> None:
    document = {
        "name": "broken",
        "tasks": [
            {"id": "a", "needs": ["b"], "run": {"executor": "local", "command": ["true"]}},
            {"id": "b", "needs": ["a"], "run": {"executor": "lokal"}},
        ],
    }
    message = await failing(client, "workflow_define", document=document)
    assert "task 'b', field 'run.executor'" in message
    assert "workflow_validate" in message
    assert (await call(client, "workflow_list"))["workflows"] == []


# --- runs -------------------------------------------------------------------------------------


async def test_run_wait_reports_progress_as_tasks_finish(client: Client) -> None:
    await call(client, "workflow_define", document=HELLO)
    started = await call(client, "run_start", workflow="hello")
    assert started["status"] in {"pending", "running"}
    assert started["id"].startswith("run_")
    seen: list[tuple[float, float | None, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append((progress, total, message))

    with anyio.fail_after(WAIT):
        result = await client.call_tool(
            "run_wait",
            {"run_id": started["id"], "timeout_seconds": WAIT},
            progress_callback=on_progress,
        )
    ended = data(result)
    assert ended["finished"] is True
    assert ended["status"] == "succeeded"
    assert [t["status"] for t in ended["tasks"]] == ["succeeded"] * 3
    assert seen[-1][:2] == (3, 3)
    assert [p for p, _, _ in seen] == sorted({p for p, _, _ in seen})  # only ever increases
    assert any("done succeeded" in (message or "") for _, _, message in seen)


async def test_run_status_shows_each_task_run(client: Client) -> None:
    await call(client, "workflow_define", document=HELLO)
    ended = await run_to_end(client, "hello")
    status = await call(client, "run_status", run_id=ended["id"])
    shout = next(t for t in status["tasks"] if t["task_id"] == "shout")
    assert shout["output_summary"] == "HELLO!"
    assert shout["attempts"] == 1
    assert shout["duration_seconds"] is not None
    assert status["started_at"].endswith("+00:00")


async def test_run_wait_returns_an_unfinished_run_at_its_timeout(client: Client) -> None:
    await call(client, "workflow_define", document=SLOW)
    started = await call(client, "run_start", workflow="slow")
    waited = await call(client, "run_wait", run_id=started["id"], timeout_seconds=0.2)
    assert waited["finished"] is False
    cancelled = await call(client, "run_cancel", run_id=started["id"])
    assert cancelled["id"] == started["id"]
    assert cancelled["status"] in {"running", "cancelled"}  # the kill may still be under way
    ended = await call(client, "run_wait", run_id=started["id"], timeout_seconds=WAIT)
    assert ended["status"] == "cancelled"
    assert ended["tasks"][0]["status"] == "cancelled"
    message = await failing(client, "run_cancel", run_id=started["id"])
    assert "already cancelled" in message


async def test_run_list_pages_with_a_cursor(client: Client) -> None:
    await call(client, "workflow_define", document=HELLO)
    ids = [(await call(client, "run_start", workflow="hello"))["id"] for _ in range(5)]
    seen: list[str] = []
    cursor = None
    for _ in range(5):
        page = await call(client, "run_list", workflow="hello", limit=2, cursor=cursor)
        seen += [run["id"] for run in page["runs"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(ids))
    for run_id in ids:
        await call(client, "run_wait", run_id=run_id, timeout_seconds=WAIT)
    done = await call(client, "run_list", status=["succeeded"], limit=200)
    assert len(done["runs"]) == 5
    assert done["next_cursor"] is None


async def test_idempotency_key_returns_the_same_run(client: Client) -> None:
    await call(client, "workflow_define", document=HELLO)
    first = await call(client, "run_start", workflow="hello", idempotency_key="once")
    second = await call(client, "run_start", workflow="hello", idempotency_key="once")
    assert first["id"] == second["id"]


# --- tasks ------------------------------------------------------------------------------------


async def test_task_get_and_task_logs_show_what_an_attempt_printed(client: Client) -> None:
    await call(client, "workflow_define", document=HELLO)
    ended = await run_to_end(client, "hello")
    task = await call(client, "task_get", run_id=ended["id"], task_id="shout")
    assert task["output"]["stdout"] == "HELLO!\n"
    assert [a["number"] for a in task["attempt_list"]] == [1]
    logs = await call(client, "task_logs", run_id=ended["id"], task_id="shout")
    assert logs["stdout"] == "HELLO!\n"
    assert logs["attempt"] == 1
    assert logs["exit_code"] == 0
    assert logs["stdout_truncated"] is False
    assert logs["cap_bytes"] > 0
    listed = await call(client, "task_list", run_id=ended["id"], status=["succeeded"])
    assert [t["task_id"] for t in listed["tasks"]] == ["greet", "shout", "done"]
    message = await failing(client, "task_logs", run_id=ended["id"], task_id="shout", attempt=7)
    assert "no attempt 7" in message


async def test_failed_task_goes_to_the_dead_letter_queue_and_replays_after_a_fix(
    client: Client, tmp_path: Path
) -> None:
    flag = tmp_path / "flag"
    await call(client, "workflow_define", document=needs_flag())
    failed = await run_to_end(client, "needs-flag", flag=str(flag))
    assert failed["status"] == "failed"
    check = failed["tasks"][0]
    assert check["status"] == "failed"
    assert check["error"]["kind"] == "exit_code"
    logs = await call(client, "task_logs", run_id=failed["id"], task_id="check")
    assert logs["stderr"] == "no flag\n"
    assert logs["exit_code"] == 4
    (letter,) = (await call(client, "dlq_list", run_id=failed["id"]))["dead_letters"]
    assert letter["task_id"] == "check"
    assert letter["error"]["exit_code"] == 4

    flag.write_text("fixed")
    replayed = await call(client, "dlq_replay", dead_letter_id=letter["id"])
    assert replayed["id"] == failed["id"]
    ended = await call(client, "run_wait", run_id=failed["id"], timeout_seconds=WAIT)
    assert ended["status"] == "succeeded"
    assert (await call(client, "dlq_list"))["dead_letters"] == []
    assert len((await call(client, "dlq_list", include_replayed=True))["dead_letters"]) == 1
    again = await run_to_end(client, "needs-flag", flag=str(tmp_path / "missing"))
    page = await call(client, "dlq_list", include_replayed=True, limit=1)
    assert [d["id"] for d in page["dead_letters"]] == [letter["id"]]
    rest = await call(client, "dlq_list", include_replayed=True, cursor=page["next_cursor"])
    assert [d["run_id"] for d in rest["dead_letters"]] == [again["id"]]
    assert "next_cursor" not in rest or rest["next_cursor"] is None
    message = await failing(client, "dlq_replay", dead_letter_id=letter["id"])
    assert "already replayed" in message


async def test_run_retry_runs_the_failed_tasks_again(client: Client, tmp_path: Path) -> None:
    flag = tmp_path / "flag"
    await call(client, "workflow_define", document=needs_flag())
    failed = await run_to_end(client, "needs-flag", flag=str(flag))
    assert [t["status"] for t in failed["tasks"]] == ["failed", "skipped"]
    flag.write_text("fixed")
    retried = await call(client, "run_retry", run_id=failed["id"])
    assert retried["status"] == "running"
    ended = await call(client, "run_wait", run_id=failed["id"], timeout_seconds=WAIT)
    assert [t["status"] for t in ended["tasks"]] == ["succeeded", "succeeded"]
    message = await failing(client, "run_retry", run_id=failed["id"])
    assert "nothing" in message.lower() or "succeeded" in message


# --- errors -----------------------------------------------------------------------------------


async def test_bad_calls_are_tool_errors_and_the_session_goes_on(client: Client) -> None:
    message = await failing(client, "run_status", run_id="run_nope")
    assert "run 'run_nope' does not exist" in message
    assert "run_list" in message
    assert "does not exist" in await failing(client, "workflow_get", name="ghost")
    assert "does not exist" in await failing(client, "run_start", workflow="ghost")
    message = await failing(client, "run_list", limit="many")
    assert "limit" in message
    message = await failing(client, "run_wait", run_id="x", timeout_seconds=10_000)
    assert "timeout_seconds" in message
    await call(client, "workflow_define", document=needs_flag())
    message = await failing(client, "run_start", workflow="needs-flag", inputs={"flag": 3})
    assert "flag" in message
    assert "workflow_get" in message
    assert "problem" in await failing(client, "workflow_define", document="tasks: [")
    assert (await call(client, "workflow_list"))["workflows"][0]["name"] == "needs-flag"


# --- resources --------------------------------------------------------------------------------


async def test_resources_show_a_run_as_json_and_its_graph_as_mermaid(client: Client) -> None:
    fallback = {
        "name": "fallback",
        "tasks": [
            {
                "id": "primary",
                "fallback": "backup",
                "run": {"executor": "local", "shell": "exit 3"},
            },
            {"id": "backup", "run": {"executor": "local", "command": ["echo", "ok"]}},
            {"id": "use", "needs": ["primary"], "run": {"executor": "local", "command": ["true"]}},
        ],
    }
    await call(client, "workflow_define", document=fallback)
    ended = await run_to_end(client, "fallback")
    run = resource_json(await client.read_resource(f"aop://runs/{ended['id']}"))
    assert run["id"] == ended["id"]
    assert len(run["tasks"]) == 3
    graph = resource_text(await client.read_resource(f"aop://runs/{ended['id']}/graph"))
    assert graph.startswith("flowchart TD\n")
    assert 't0["primary<br/>failed"]:::failed' in graph
    assert 't1["backup<br/>succeeded"]:::succeeded' in graph
    assert "t0 --> t2" in graph
    assert "t0 -.->|fallback| t1" in graph
    assert "classDef succeeded" in graph
    document = resource_json(await client.read_resource("aop://workflows/fallback"))
    assert document["name"] == "fallback"
    templates = (await client.list_resource_templates()).resource_templates
    assert {t.uri_template for t in templates} == {
        "aop://workflows/{name}", "aop://runs/{run_id}", "aop://runs/{run_id}/graph",
    }  # fmt: skip


async def test_reading_an_unknown_run_is_a_not_found_error(client: Client) -> None:
    from mcp import MCPError

    with pytest.raises(MCPError, match="does not exist"):
        await client.read_resource("aop://runs/run_nope")


async def test_subscriber_of_a_run_hears_it_change_on_the_2025_protocol(door: McpDoor) -> None:
    updated: list[str] = []
    got = anyio.Event()

    async def on_message(message: object) -> None:
        if isinstance(message, types.ResourceUpdatedNotification):
            updated.append(message.params.uri)
            got.set()

    async with Client(door.server, mode="legacy", message_handler=on_message) as client:
        assert client.server_capabilities.resources.subscribe is True
        await call(client, "workflow_define", document=HELLO)
        started = await call(client, "run_start", workflow="hello")
        uri = f"aop://runs/{started['id']}"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # resources/subscribe is deprecated in 2026-07-28
            await client.subscribe_resource(uri)
        await call(client, "run_wait", run_id=started["id"], timeout_seconds=WAIT)
        with anyio.fail_after(WAIT):
            await got.wait()
        assert uri in updated
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            await client.unsubscribe_resource(uri)
        assert door.updates.subscribers(uri) == 0


async def test_listener_of_a_run_hears_it_change_on_the_2026_protocol(door: McpDoor) -> None:
    async with Client(door.server) as client:
        await call(client, "workflow_define", document=HELLO)
        started = await call(client, "run_start", workflow="hello")
        uri = f"aop://runs/{started['id']}/graph"
        async with client.listen(resource_subscriptions=[uri]) as subscription:
            await call(client, "run_wait", run_id=started["id"], timeout_seconds=WAIT)
            with anyio.fail_after(WAIT):
                event = await subscription.__anext__()
        assert getattr(event, "uri", None) == uri


# --- prompt -----------------------------------------------------------------------------------


async def test_design_workflow_prompt_gives_schema_example_and_the_validate_step(
    client: Client,
) -> None:
    prompts = (await client.list_prompts()).prompts
    assert [p.name for p in prompts] == ["design_workflow"]
    result = await client.get_prompt("design_workflow", {"goal": "back up my notes"})
    (message,) = result.messages
    assert isinstance(message.content, types.TextContent)
    body = message.content.text
    assert "back up my notes" in body
    assert "workflow_validate" in body
    assert '"properties"' in body
    assert "release-notes" in body


def test_the_prompt_example_is_a_valid_document() -> None:
    document = parse_workflow(EXAMPLE)
    assert len(document.tasks) == 5
