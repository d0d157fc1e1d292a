"""The dashboard's pages through the real server app: auth, CSRF, pages, fragments, actions."""

from __future__ import annotations

import html
import re
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import engine_callables
import pytest
from test_agent_executor import ToolServer, served  # noqa: F401  (the fixture)
from test_agent_runs import agent_spec, summarize_workflow
from web_support import WAIT, Dashboard, dashboard

from aop_mcp.agents.spec import AgentSpec
from aop_mcp.models import RunStatus
from aop_mcp.security.principal import Role
from aop_mcp.security.sessions import Session, SessionSealer

PY = "python"
CALLS = "engine_callables"
HOLD = {
    "name": "held",
    "inputs": {"who": {"type": "string"}, "times": {"type": "integer", "default": 1}},
    "tasks": [
        {
            "id": "first",
            "run": {
                "executor": PY,
                "function": f"{CALLS}:record",
                "args": {"name": "first"},
            },
        },
        {
            "id": "wait",
            "needs": ["first"],
            "run": {"executor": PY, "function": f"{CALLS}:hold", "args": {"name": "web"}},
        },
        {
            "id": "last",
            "needs": ["wait"],
            "run": {"executor": PY, "function": "engine_callables:noop"},
        },
    ],
}
FAILING = {
    "name": "failing",
    "tasks": [{"id": "boom", "run": {"executor": "local", "shell": "echo oops >&2; exit 3"}}],
}
pytestmark = pytest.mark.anyio

QUICK = {
    "name": "quick",
    "tasks": [{"id": "only", "run": {"executor": "python", "function": "engine_callables:noop"}}],
}


@pytest.fixture
async def site(tmp_path: Path) -> AsyncIterator[Dashboard]:
    engine_callables.reset()
    async with dashboard(tmp_path) as started:
        for document in (HOLD, FAILING, QUICK):
            await started.hub.workflows.define(document)
        yield started
    engine_callables.reset()


async def finished(site: Dashboard, run_id: str) -> RunStatus:
    with anyio.fail_after(WAIT):
        return (await site.hub.runs.wait(run_id)).status


# --- signing in and out ---------------------------------------------------------------------


async def test_pages_redirect_to_signin_and_htmx_gets_hx_redirect(site: Dashboard) -> None:
    async with site.anonymous() as client:
        page = await client.get("/runs?status=failed")
        assert page.status_code == 303
        assert page.headers["location"] == "/signin?next=%2Fruns%3Fstatus%3Dfailed"
        fragment = await client.get("/overview/stats", headers={"HX-Request": "true"})
        assert fragment.status_code == 401
        assert fragment.headers["hx-redirect"].startswith("/signin?next=")
        form = await client.get("/signin")
        assert form.status_code == 200
        assert 'name="token"' in form.text


async def test_signin_sets_a_secure_httponly_samesite_cookie(site: Dashboard) -> None:
    async with site.anonymous() as client:
        form = await client.get("/signin?next=/workflows")
        nonce = re.search(r'name="csrf" value="([^"]+)"', form.text)[1]  # type: ignore[index]
        done = await client.post(
            "/signin",
            data={"csrf": nonce, "token": site.tokens[Role.VIEWER], "next": "/workflows"},
            headers={"Cookie": f"aop_signin={form.cookies['aop_signin']}"},
        )
        assert done.status_code == 303
        assert done.headers["location"] == "/workflows"
        cookie = next(
            c for c in done.headers.get_list("set-cookie") if c.startswith("aop_session=")
        )
        attributes = {part.strip().lower() for part in cookie.split(";")}
        assert {"httponly", "secure", "samesite=strict", "path=/"} <= attributes


async def test_signin_refuses_bad_tokens_forged_forms_and_foreign_next(site: Dashboard) -> None:
    async with site.anonymous() as client:
        form = await client.get("/signin")
        nonce = re.search(r'name="csrf" value="([^"]+)"', form.text)[1]  # type: ignore[index]
        cookie = {"Cookie": f"aop_signin={form.cookies['aop_signin']}"}
        wrong = await client.post("/signin", data={"csrf": nonce, "token": "nope"}, headers=cookie)
        assert wrong.status_code == 401
        assert "unknown or revoked" in wrong.text
        assert "aop_session" not in wrong.headers.get("set-cookie", "")
        forged = await client.post("/signin", data={"csrf": "x", "token": site.tokens[Role.ADMIN]})
        assert forged.status_code == 403
        assert "aop_session" not in forged.headers.get("set-cookie", "")
        away = await client.post(
            "/signin",
            data={"csrf": nonce, "token": site.tokens[Role.ADMIN], "next": "//evil.example/"},
            headers=cookie,
        )
        assert away.headers["location"] == "/"


async def test_signout_needs_csrf_and_clears_the_session(site: Dashboard) -> None:
    browser = await site.browser()
    refused = await browser.post("/signout", csrf=False)
    assert refused.status_code == 403
    assert (await browser.get("/")).status_code == 200
    out = await browser.post("/signout")
    assert out.status_code == 303
    assert 'aop_session=""' in out.headers["set-cookie"]


async def test_a_revoked_token_signs_the_browser_out(site: Dashboard) -> None:
    browser = await site.browser(Role.VIEWER)
    [viewer] = [t for t in await site.hub.tokens.list() if t.name == "viewer-user"]
    await site.hub.tokens.revoke(viewer.id)
    page = await browser.get("/runs")
    assert page.status_code == 303
    assert page.headers["location"].startswith("/signin")


# --- CSRF and roles -------------------------------------------------------------------------


async def test_writes_without_csrf_or_from_another_origin_are_refused(site: Dashboard) -> None:
    browser = await site.browser()
    missing = await browser.post("/workflows/quick/runs", csrf=False)
    assert missing.status_code == 403
    assert "CSRF" in missing.text
    wrong = await browser.post("/workflows/quick/runs", {"csrf": "forged"}, csrf=False)
    assert wrong.status_code == 403
    foreign = await browser.post(
        "/workflows/quick/runs", headers={"Origin": "https://evil.example"}
    )
    assert foreign.status_code == 403
    assert await site.hub.runs.list(workflow="quick") == []  # nothing was started


async def test_viewers_see_pages_but_may_not_start_cancel_or_replay(site: Dashboard) -> None:
    browser = await site.browser(Role.VIEWER)
    page = await browser.get("/workflows/quick")
    assert page.status_code == 200
    assert "may look but not start runs" in page.text
    refused = await browser.post("/workflows/quick/runs")
    assert refused.status_code == 403
    assert "viewer role may not" in refused.text
    assert await site.hub.runs.list(workflow="quick") == []


# --- pages ----------------------------------------------------------------------------------


async def test_overview_counts_runs_dead_letters_and_draws_the_chart(site: Dashboard) -> None:
    ok = await site.hub.runs.start("quick")
    bad = await site.hub.runs.start("failing")
    assert await finished(site, ok.id) is RunStatus.SUCCEEDED
    assert await finished(site, bad.id) is RunStatus.FAILED
    browser = await site.browser()
    stats = await browser.get("/overview/stats", headers={"HX-Request": "true"})
    assert stats.status_code == 200
    text = stats.text
    assert re.search(r'href="/runs\?status=succeeded">\s*<h2>succeeded</h2>\s*<p[^>]*>1<', text)
    assert re.search(r'href="/runs\?status=failed">\s*<h2>failed</h2>\s*<p[^>]*>1<', text)
    assert re.search(r"Dead letters</h2>\s*<p[^>]*>1<", text)
    assert 'class="chart"' in text
    assert 'data-count="2"' in text  # both tasks finished within the last bucket
    assert ok.id in text


async def test_workflow_page_draws_the_graph_and_lists_versions(site: Dashboard) -> None:
    browser = await site.browser()
    listing = await browser.get("/workflows")
    assert all(f'href="/workflows/{name}"' in listing.text for name in ("held", "quick"))
    page = await browser.get("/workflows/held")
    assert page.status_code == 200
    for task in ("first", "wait", "last"):
        assert f'id="task-{task}"' in page.text
    assert 'data-from="first" data-to="wait"' in page.text
    assert 'name="input.who"' in page.text


async def test_run_form_shows_errors_beside_the_field_and_starts_nothing(site: Dashboard) -> None:
    browser = await site.browser()
    bad = await browser.post(
        "/workflows/held/runs", {"input.times": "many"}, headers={"HX-Request": "true"}
    )
    assert bad.status_code == 422
    assert 'id="input.times-error"' in bad.text
    assert "expected an integer" in bad.text or "integer" in bad.text
    assert 'id="input.who-error"' in bad.text  # required and missing
    assert 'value="many"' in bad.text  # what the person typed is kept
    assert await site.hub.runs.list(workflow="held") == []


async def test_run_form_starts_a_run_and_goes_to_its_page(site: Dashboard) -> None:
    browser = await site.browser()
    started = await browser.post("/workflows/quick/runs")
    assert started.status_code == 303
    run_id = started.headers["location"].removeprefix("/runs/")
    assert await finished(site, run_id) is RunStatus.SUCCEEDED
    by_htmx = await browser.post(
        "/workflows/held/runs",
        {"input.who": "ada", "input.times": "2"},
        headers={"HX-Request": "true"},
    )
    assert by_htmx.status_code == 204
    run = await site.hub.runs.get(by_htmx.headers["hx-redirect"].removeprefix("/runs/"))
    assert run.run.inputs == {"who": "ada", "times": 2}
    engine_callables.gates["web"].set()
    assert await finished(site, run.run.id) is RunStatus.SUCCEEDED


async def test_runs_are_filtered_and_paginated(site: Dashboard) -> None:
    runs = [await site.hub.runs.start("quick") for _ in range(30)]
    for run in runs:
        await finished(site, run.id)
    failed = await site.hub.runs.start("failing")
    await finished(site, failed.id)
    browser = await site.browser()
    first = await browser.get("/runs?workflow=quick")
    rows = re.findall(r'<a class="mono" href="/runs/(run_[^"]+)"', first.text)
    assert rows == [run.id for run in reversed(runs)][:25]
    cursor = re.search(r'rel="next" href="([^"]+)"', first.text)
    assert cursor
    second = await browser.get(cursor[1].replace("&amp;", "&"))
    rows = re.findall(r'<a class="mono" href="/runs/(run_[^"]+)"', second.text)
    assert rows == [run.id for run in reversed(runs)][25:]
    assert 'rel="next"' not in second.text
    only_failed = await browser.get("/runs?status=failed")
    assert re.findall(r'href="/runs/(run_[^"]+)"', only_failed.text) == [failed.id]
    nonsense = await browser.get("/runs?status=exploded")
    assert nonsense.status_code == 400
    assert "not a run status" in nonsense.text


async def test_run_page_task_panel_cancel_and_retry(site: Dashboard) -> None:
    browser = await site.browser()
    run = await site.hub.runs.start("held", {"who": "x"})
    with anyio.fail_after(WAIT):
        await engine_callables.entered["web"].wait()
    page = await browser.get(f"/runs/{run.id}")
    assert page.status_code == 200
    assert f'sse-connect="/runs/{run.id}/live"' in page.text
    assert re.search(r'id="task-first"[^>]*data-status="succeeded"', page.text)
    assert re.search(r'id="task-wait"[^>]*data-status="running"', page.text)
    panel = await browser.get(f"/runs/{run.id}/tasks/first", headers={"HX-Request": "true"})
    assert '"name": "first"' in html.unescape(panel.text)  # the task's JSON output
    assert f'href="/runs/{run.id}?task=first#task-panel"' in page.text  # a box of the graph
    chosen = await browser.get(f"/runs/{run.id}?task=first")
    assert '"name": "first"' in html.unescape(chosen.text)  # opens with that task's panel
    cancelled = await browser.post(f"/runs/{run.id}/cancel")
    assert cancelled.status_code == 303
    assert await finished(site, run.id) is RunStatus.CANCELLED
    again = await browser.post(f"/runs/{run.id}/cancel", headers={"HX-Request": "true"})
    assert again.status_code == 409  # already over: shown in the page's flash area
    assert "alert" in again.text
    page = await browser.get(f"/runs/{run.id}")
    assert 'id="retry-run"' in page.text
    engine_callables.gates["web"].set()
    retried = await browser.post(f"/runs/{run.id}/retry")
    assert retried.status_code == 303
    assert await finished(site, run.id) is RunStatus.SUCCEEDED


async def test_dead_letters_are_listed_and_replayed(site: Dashboard) -> None:
    run = await site.hub.runs.start("failing")
    await finished(site, run.id)
    browser = await site.browser()
    page = await browser.get("/dead-letters")
    [letter] = await site.hub.dead_letters.list()
    assert f'id="dl-{letter.id}"' in page.text
    assert "exit_code" in page.text
    replayed = await browser.post(f"/dead-letters/{letter.id}/replay")
    assert replayed.status_code == 303
    assert replayed.headers["location"] == f"/runs/{run.id}"
    await finished(site, run.id)
    after = await browser.get("/dead-letters")
    assert f'id="dl-{letter.id}"' not in after.text or "replayed" in after.text
    history = await browser.get("/dead-letters?all=1")
    assert f'id="dl-{letter.id}"' in history.text


async def test_agents_list_and_agent_page(site: Dashboard) -> None:
    spec = AgentSpec.model_validate(
        {"name": "puller", "kind": "pull", "capabilities": ["translate"]}
    )
    await site.hub.agents.register(spec)
    browser = await site.browser(Role.VIEWER)
    listing = await browser.get("/agents")
    assert 'href="/agents/puller"' in listing.text
    assert "health-healthy" in listing.text
    assert "translate" in listing.text
    page = await browser.get("/agents/puller")
    assert page.status_code == 200
    assert "Configuration versions" in page.text
    assert "v1" in page.text
    missing = await browser.get("/agents/nobody")
    assert missing.status_code == 404


async def test_an_agents_page_lists_the_tasks_it_served(
    site: Dashboard,
    served: ToolServer,  # noqa: F811
) -> None:
    config = {"url": served.url, "tool": "summarize"}
    await site.hub.agents.register(agent_spec("summarizer", "mcp", config))
    await site.hub.workflows.define(summarize_workflow("brief"))
    run = await site.hub.runs.start("summaries")
    assert await finished(site, run.id) is RunStatus.SUCCEEDED
    browser = await site.browser(Role.VIEWER)
    page = await browser.get("/agents/summarizer")
    assert f'href="/runs/{run.id}"' in page.text
    assert "brief" in page.text
    panel = await browser.get(f"/runs/{run.id}/tasks/brief", headers={"HX-Request": "true"})
    assert 'href="/agents/summarizer"' in panel.text  # the attempt names its agent


async def test_unknown_run_is_a_404_page_and_static_files_are_served(site: Dashboard) -> None:
    browser = await site.browser()
    missing = await browser.get("/runs/run_nope")
    assert missing.status_code == 404
    assert "does not exist" in missing.text
    assert "default-src 'self'" in missing.headers["content-security-policy"]
    htmx = await browser.get("/static/htmx.min.js")
    assert htmx.status_code == 200
    assert "javascript" in htmx.headers["content-type"]
    assert (await browser.get("/static/style.css")).status_code == 200


async def test_live_stream_sends_the_graph_as_tasks_finish_then_done(site: Dashboard) -> None:
    browser = await site.browser()
    run = await site.hub.runs.start("held", {"who": "x"})
    with anyio.fail_after(WAIT):
        await engine_callables.entered["web"].wait()
    async with browser.client.stream("GET", f"/runs/{run.id}/live") as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        seen = ""
        opened = False
        with anyio.fail_after(WAIT):
            async for chunk in stream.aiter_text():
                seen += chunk
                if not opened and "event: dag" in seen:
                    assert 'id="task-wait"' in seen
                    assert re.search(r'id="task-wait"[^>]*data-status="running"', seen)
                    opened = True
                    engine_callables.gates["web"].set()
                if "event: done" in seen:
                    break
    assert re.search(r'id="task-last"[^>]*data-status="succeeded"', seen)
    assert "event: summary" in seen


async def test_a_session_shows_neither_its_token_nor_its_csrf_value() -> None:
    session = Session(token="aop_top_secret", csrf="csrf_value")
    assert "aop_top_secret" not in repr(session)
    assert "csrf_value" not in repr(session)
    assert SessionSealer(b"k" * 32).open(SessionSealer(b"k" * 32).seal(session)) == session
    assert SessionSealer(b"o" * 32).open(SessionSealer(b"k" * 32).seal(session)) is None
