"""The REST API as a script sees it: a real server on a port, bearer tokens, JSON and problems."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import anyio
import engine_callables as calls
import httpx2
import pytest
from api_support import WAIT, ApiServer, serving
from starlette.routing import Route

from aop_mcp.api import create_api

pytestmark = pytest.mark.anyio

HELLO = {
    "name": "hello",
    "inputs": {"who": {"type": "string", "default": "world"}},
    "tasks": [{"id": "greet", "run": {"executor": "local", "shell": "echo hi; echo oops >&2"}}],
}

HELLO_YAML = """
name: hello
description: greets twice
tasks:
  - id: greet
    run: {executor: local, command: [echo, hi]}
"""

FAILING = {
    "name": "failing",
    "tasks": [{"id": "boom", "run": {"executor": "local", "shell": "echo no >&2; exit 3"}}],
}

HELD = {
    "name": "held",
    "tasks": [
        {
            "id": "wait",
            "run": {
                "executor": "python",
                "function": "engine_callables:hold",
                "args": {"name": "wait"},
            },
        }
    ],
}


@pytest.fixture(autouse=True)
def _fresh_callables() -> None:
    calls.reset()


@pytest.fixture
async def api(tmp_path) -> AsyncIterator[ApiServer]:
    async with serving(tmp_path) as server:
        yield server


@pytest.fixture
async def client(api: ApiServer) -> AsyncIterator[httpx2.AsyncClient]:
    async with api.client() as operator:
        yield operator


def problem(response: httpx2.Response, status: int) -> dict[str, Any]:
    """The problem+json body of an error response, checked for its RFC 9457 shape."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == status
    assert set(body) <= {"type", "title", "status", "detail", "errors"}
    assert all(isinstance(body[key], str) and body[key] for key in ("type", "title", "detail"))
    return body


async def define(client: httpx2.AsyncClient, document: dict[str, Any]) -> None:
    response = await client.post("/workflows", json=document)
    assert response.status_code in (200, 201), response.text


async def finished_run(api: ApiServer, client: httpx2.AsyncClient, name: str) -> dict[str, Any]:
    """Start a run of `name` through the API and wait until it ends."""
    response = await client.post(f"/workflows/{name}/runs", json={})
    assert response.status_code == 201, response.text
    with anyio.fail_after(WAIT):
        await api.hub.runs.wait(response.json()["id"])
    return response.json()


# --- authentication and roles ---------------------------------------------------------------


async def test_a_request_without_a_token_is_401_with_a_bearer_challenge(api: ApiServer) -> None:
    async with api.client(token=None) as anonymous:
        response = await anonymous.get("/runs")
    body = problem(response, 401)
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert "Authorization: Bearer" in body["detail"]


async def test_an_unknown_token_is_401_and_never_logged(api: ApiServer, caplog) -> None:
    async with api.client(token="aop_not-a-real-token") as stranger:
        response = await stranger.post("/workflows", json=HELLO)
    problem(response, 401)
    assert 'error="invalid_token"' in response.headers["www-authenticate"]
    assert "refused POST /api/v1/workflows" in caplog.text
    assert "not-a-real-token" not in caplog.text


async def test_a_viewer_may_read_but_not_write(api: ApiServer) -> None:
    async with api.client("viewer") as viewer:
        assert (await viewer.get("/workflows")).status_code == 200
        body = problem(await viewer.post("/workflows", json=HELLO), 403)
    assert "viewer" in body["detail"]
    assert (await api.hub.workflows.list()) == []


async def test_an_agent_may_read_but_not_start_runs(api: ApiServer, client) -> None:
    await define(client, HELLO)
    async with api.client("agent") as agent:
        assert (await agent.get("/workflows/hello")).status_code == 200
        problem(await agent.post("/workflows/hello/runs", json={}), 403)


# --- workflows ------------------------------------------------------------------------------


async def test_defining_a_workflow_is_201_then_200_when_unchanged(client) -> None:
    first = await client.post("/workflows", json=HELLO)
    assert first.status_code == 201
    assert first.json() == {
        "name": "hello",
        "version": 1,
        "digest": first.json()["digest"],
        "created": True,
    }
    assert first.headers["location"] == "/api/v1/workflows/hello?version=1"
    again = await client.post("/workflows", json=HELLO)
    assert again.status_code == 200
    assert again.json()["created"] is False
    assert again.json()["version"] == 1


async def test_a_workflow_may_be_sent_as_yaml_and_read_back_by_version(client) -> None:
    await define(client, HELLO)
    yaml_body = await client.post(
        "/workflows", content=HELLO_YAML, headers={"Content-Type": "application/yaml"}
    )
    assert yaml_body.status_code == 201
    assert yaml_body.json()["version"] == 2
    latest = (await client.get("/workflows/hello")).json()
    assert latest["version"] == 2
    assert latest["description"] == "greets twice"
    assert latest["tasks"] == ["greet"]
    assert latest["document"]["tasks"][0]["run"]["command"] == ["echo", "hi"]
    assert latest["created_at"].endswith("Z") or "+00:00" in latest["created_at"]
    first = (await client.get("/workflows/hello", params={"version": 1})).json()
    assert first["version"] == 1
    listed = (await client.get("/workflows")).json()
    assert [(w["name"], w["version"]) for w in listed["items"]] == [("hello", 2)]


async def test_an_unknown_workflow_is_404_and_a_bad_version_is_400(client) -> None:
    body = problem(await client.get("/workflows/nope"), 404)
    assert body["type"] == "urn:aop-mcp:problem:workflow-not-found"
    assert body["title"] == "Workflow not found"
    await define(client, HELLO)
    problem(await client.get("/workflows/hello", params={"version": 7}), 404)
    bad = problem(await client.get("/workflows/hello", params={"version": "x"}), 400)
    assert bad["errors"][0]["field"] == "version"


async def test_an_invalid_workflow_is_422_naming_the_task_and_field(client) -> None:
    document = {
        "name": "broken",
        "tasks": [{"id": "fetch", "run": {"executor": "local", "comand": ["ls"]}}],
    }
    for path in ("/workflows", "/workflows/validate"):
        body = problem(await client.post(path, json=document), 422)
        assert body["type"] == "urn:aop-mcp:problem:invalid-workflow"
        assert {"task": "fetch", "field": "run.comand"} in [
            {"task": e["task"], "field": e["field"]} for e in body["errors"]
        ]
        assert "did you mean 'command'" in body["detail"]


async def test_a_yaml_syntax_error_is_422_naming_the_line(client) -> None:
    response = await client.post(
        "/workflows", content="name: x\ntasks: [\n", headers={"Content-Type": "text/plain"}
    )
    body = problem(response, 422)
    assert body["errors"][0]["field"] == "document"
    assert "line" in body["errors"][0]["message"]


async def test_validate_answers_a_valid_document_without_storing_it(api, client) -> None:
    response = await client.post(
        "/workflows/validate", content=HELLO_YAML, headers={"Content-Type": "application/yaml"}
    )
    assert response.status_code == 200
    assert response.json() == {
        "valid": True,
        "name": "hello",
        "digest": response.json()["digest"],
        "tasks": ["greet"],
    }
    assert await api.hub.workflows.list() == []


async def test_malformed_json_is_400(client) -> None:
    headers = {"Content-Type": "application/json"}
    body = problem(await client.post("/workflows", content="{name: ", headers=headers), 400)
    assert "not valid JSON" in body["detail"]
    await define(client, HELLO)
    problem(await client.post("/workflows/hello/runs", content="[1,", headers=headers), 400)


async def test_an_unsupported_body_type_is_415(client) -> None:
    response = await client.post(
        "/workflows", content=b"\x00", headers={"Content-Type": "application/octet-stream"}
    )
    problem(response, 415)


# --- runs -----------------------------------------------------------------------------------


async def test_starting_a_run_is_201_and_a_reused_key_answers_the_same_run_with_200(
    client,
) -> None:
    await define(client, HELLO)
    body = {"inputs": {"who": "ann"}, "idempotency_key": "deploy-42"}
    first = await client.post("/workflows/hello/runs", json=body)
    assert first.status_code == 201, first.text
    run = first.json()
    assert run["workflow"] == "hello"
    assert run["inputs"] == {"who": "ann"}
    assert run["idempotency_key"] == "deploy-42"
    assert first.headers["location"] == f"/api/v1/runs/{run['id']}"
    again = await client.post("/workflows/hello/runs", json=body)
    assert again.status_code == 200
    assert again.json()["id"] == run["id"]


async def test_invalid_run_inputs_and_bodies_are_422_naming_the_field(client) -> None:
    await define(client, HELLO)
    bad_input = await client.post("/workflows/hello/runs", json={"inputs": {"who": 3}})
    [error] = problem(bad_input, 422)["errors"]
    assert (error["task"], error["field"]) == (None, "inputs.who")
    unknown = await client.post("/workflows/hello/runs", json={"input": {}})
    assert problem(unknown, 422)["errors"][0]["field"] == "input"
    problem(await client.post("/workflows/nope/runs", json={}), 404)


async def test_a_finished_run_shows_its_tasks_attempts_and_logs(api, client) -> None:
    await define(client, HELLO)
    run_id = (await finished_run(api, client, "hello"))["id"]
    detail = (await client.get(f"/runs/{run_id}")).json()
    assert detail["run"]["status"] == "succeeded"
    assert detail["run"]["finished_at"] is not None
    assert [t["task_id"] for t in detail["tasks"]] == ["greet"]
    assert detail["tasks"][0]["output"]["stdout"] == "hi\n"
    tasks = (await client.get(f"/runs/{run_id}/tasks")).json()
    assert tasks["items"] == detail["tasks"]
    task = (await client.get(f"/runs/{run_id}/tasks/greet")).json()
    assert task["task"]["status"] == "succeeded"
    assert [a["number"] for a in task["attempts"]] == [1]
    assert task["attempts"][0]["status"] == "succeeded"
    logs = (await client.get(f"/runs/{run_id}/tasks/greet/logs")).json()
    assert (logs["attempt"], logs["stdout"], logs["stderr"]) == (1, "hi\n", "oops\n")
    assert logs["exit_code"] == 0
    same = await client.get(f"/runs/{run_id}/tasks/greet/logs", params={"attempt": 1})
    assert same.json() == logs
    problem(await client.get(f"/runs/{run_id}/tasks/greet/logs", params={"attempt": 2}), 404)
    problem(await client.get(f"/runs/{run_id}/tasks/nope"), 404)


async def test_an_unknown_run_is_404_everywhere(client) -> None:
    for path in ("/runs/run_x", "/runs/run_x/tasks", "/runs/run_x/tasks/t"):
        body = problem(await client.get(path), 404)
        assert "run_x" in body["detail"]
    problem(await client.post("/runs/run_x/cancel"), 404)
    problem(await client.post("/runs/run_x/retry"), 404)


async def test_a_running_run_can_be_cancelled_but_a_finished_one_is_409(api, client) -> None:
    await define(client, HELD)
    run_id = (await client.post("/workflows/held/runs", json={})).json()["id"]
    with anyio.fail_after(WAIT):
        await calls.entered["wait"].wait()
    cancelled = await client.post(f"/runs/{run_id}/cancel")
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["id"] == run_id
    with anyio.fail_after(WAIT):
        assert (await api.hub.runs.wait(run_id)).status == "cancelled"
    body = problem(await client.post(f"/runs/{run_id}/cancel"), 409)
    assert body["type"] == "urn:aop-mcp:problem:run-finished"


async def test_retrying_a_failed_run_runs_it_again_and_a_succeeded_one_is_409(api, client) -> None:
    await define(client, FAILING)
    await define(client, HELLO)
    failed = await finished_run(api, client, "failing")
    retried = await client.post(f"/runs/{failed['id']}/retry")
    assert retried.status_code == 200, retried.text
    assert retried.json()["status"] == "running"
    succeeded = await finished_run(api, client, "hello")
    problem(await client.post(f"/runs/{succeeded['id']}/retry"), 409)


async def test_runs_are_listed_newest_first_in_pages_and_filtered(api, client) -> None:
    await define(client, HELLO)
    await define(client, FAILING)
    started = [(await finished_run(api, client, name))["id"] for name in ("hello",) * 3]
    failed = (await finished_run(api, client, "failing"))["id"]
    page = (await client.get("/runs", params={"limit": 2})).json()
    assert [r["id"] for r in page["items"]] == [failed, started[2]]
    rest = (await client.get("/runs", params={"limit": 3, "cursor": page["next_cursor"]})).json()
    assert [r["id"] for r in rest["items"]] == [started[1], started[0]]
    assert rest["next_cursor"] is None
    exactly_all = (await client.get("/runs", params={"limit": 4})).json()
    assert len(exactly_all["items"]) == 4
    assert exactly_all["next_cursor"] is None  # a full last page says it is the last
    only_failed = (await client.get("/runs?status=failed,cancelled")).json()
    assert [r["id"] for r in only_failed["items"]] == [failed]
    by_name = (await client.get("/runs", params={"workflow": "hello"})).json()
    assert len(by_name["items"]) == 3
    problem(await client.get("/runs", params={"status": "sleeping"}), 400)
    problem(await client.get("/runs", params={"limit": 0}), 400)
    problem(await client.get("/runs", params={"colour": "red"}), 400)


# --- dead letters ---------------------------------------------------------------------------


async def test_a_dead_letter_is_listed_replayed_once_and_then_409(api, client) -> None:
    await define(client, FAILING)
    run_id = (await finished_run(api, client, "failing"))["id"]
    letters = (await client.get("/dead-letters", params={"run_id": run_id})).json()["items"]
    assert [(d["task_id"], d["attempts"]) for d in letters] == [("boom", 1)]
    assert letters[0]["error"]["kind"] == "exit_code"
    replayed = await client.post(f"/dead-letters/{letters[0]['id']}/replay")
    assert replayed.status_code == 200, replayed.text
    assert replayed.json()["id"] == run_id
    again = problem(await client.post(f"/dead-letters/{letters[0]['id']}/replay"), 409)
    assert again["type"] == "urn:aop-mcp:problem:dead-letter-replayed"
    with anyio.fail_after(WAIT):
        await api.hub.runs.wait(run_id)  # the replayed task fails again: a new dead letter
    pending = (await client.get("/dead-letters")).json()["items"]
    assert [(d["task_id"], d["attempts"]) for d in pending] == [("boom", 2)]
    assert pending[0]["id"] != letters[0]["id"]
    listed = await client.get("/dead-letters", params={"include_replayed": "true"})
    assert [d["replayed_at"] is not None for d in listed.json()["items"]] == [True, False]
    problem(await client.post("/dead-letters/dlq_nope/replay"), 404)


async def test_dead_letters_come_a_page_at_a_time_oldest_first(api, client) -> None:
    await define(client, FAILING)
    runs = [(await finished_run(api, client, "failing"))["id"] for _ in range(3)]
    first = (await client.get("/dead-letters", params={"limit": 2})).json()
    assert [d["run_id"] for d in first["items"]] == runs[:2]
    rest = (await client.get("/dead-letters", params={"cursor": first["next_cursor"]})).json()
    assert [d["run_id"] for d in rest["items"]] == runs[2:]
    assert rest["next_cursor"] is None
    problem(await client.get("/dead-letters", params={"cursor": "dlq_nope"}), 404)
    problem(await client.get("/dead-letters", params={"limit": 0}), 400)


# --- routing and the OpenAPI document -------------------------------------------------------


async def test_unknown_routes_and_wrong_methods_are_problems(client) -> None:
    problem(await client.get("/nowhere"), 404)
    wrong = await client.delete("/workflows")
    problem(wrong, 405)
    assert set(wrong.headers["allow"].replace(" ", "").split(",")) >= {"GET", "POST"}


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [ref for value in node.values() for ref in _refs(value)]
    if isinstance(node, list):
        return [ref for item in node for ref in _refs(item)]
    return []


def _check_operation(doc: dict[str, Any], path: str, method: str, op: dict[str, Any]) -> None:
    for key in ("operationId", "summary", "responses"):
        assert op[key], (method, path, key)
    for name in [part[1:-1] for part in path.split("/") if part.startswith("{")]:
        assert {"name": name, "in": "path", "required": True, "schema": {"type": "string"}} in op[
            "parameters"
        ]
    public = op.get("security") == []
    errors = {status for status in op["responses"] if status.startswith(("4", "5"))}
    if not public:
        assert "401" in errors, (method, path)
    problem_ref = {"$ref": "#/components/schemas/ProblemView"}
    for status in errors:
        content = op["responses"][status]["content"]
        assert content == {"application/problem+json": {"schema": problem_ref}}


async def test_the_openapi_document_is_public_and_describes_every_route(api) -> None:
    async with api.client(token=None) as anonymous:
        response = await anonymous.get("/openapi.json")
    assert response.status_code == 200
    doc = response.json()
    assert doc["openapi"] == "3.1.0"
    assert doc["info"]["title"]
    assert doc["info"]["version"]
    assert doc["servers"] == [{"url": "/api/v1"}]
    assert doc["components"]["securitySchemes"]["bearer"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "an aop token",
    }
    assert doc["security"] == [{"bearer": []}]
    routes = [r for r in create_api(lambda: api.hub).routes if isinstance(r, Route)]
    for route in routes:
        for method in route.methods or ():
            if method != "HEAD":
                _check_operation(doc, route.path, method, doc["paths"][route.path][method.lower()])
    served = {(r.path, m.lower()) for r in routes for m in r.methods or () if m != "HEAD"}
    documented = {(path, method) for path, ops in doc["paths"].items() for method in ops}
    assert documented == served
    ids = [op["operationId"] for ops in doc["paths"].values() for op in ops.values()]
    assert len(ids) == len(set(ids))
    schemas = doc["components"]["schemas"]
    for ref in _refs(doc):
        assert ref.removeprefix("#/components/schemas/") in schemas, ref
    assert {"type", "title", "status", "detail", "errors"} <= set(
        schemas["ProblemView"]["properties"]
    )
    assert schemas["ProblemItem"]["required"] == ["task", "field", "message"]
    start = doc["paths"]["/workflows/{name}/runs"]["post"]
    assert start["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/StartRunRequest"
    }
    assert {"201", "200", "401", "403", "404", "422"} <= set(start["responses"])
    define_body = doc["paths"]["/workflows"]["post"]["requestBody"]["content"]
    assert {"application/json", "application/yaml", "text/plain"} <= set(define_body)
    json.dumps(doc)  # plain JSON all the way down
