"""The dashboard in real headless Chromium (Debian's `chromium`, driven by Playwright).

A person signs in, starts a run from a workflow's form, watches its graph turn green without
reloading, cancels a run and replays a dead letter. Screenshots of the overview and a run
page (wide and narrow) are saved under `test-artifacts/` (git-ignored) to be looked at.
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import engine_callables
import pytest
from web_support import WAIT, Dashboard, dashboard

from aop_mcp.models import RunStatus
from aop_mcp.security.principal import Role

playwright_api = pytest.importorskip("playwright.async_api")

pytestmark = [pytest.mark.anyio, pytest.mark.browser]

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
if CHROMIUM is None:
    pytest.skip(
        "no chromium on PATH: install Debian's `chromium` (.ci/run does) for browser tests",
        allow_module_level=True,
    )

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
# What Chromium needs to start as root in a sandboxed VM without touching the network.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TIMEOUT_MS = WAIT * 1000


def py(function: str, needs: tuple[str, ...] = (), **args: str) -> dict[str, Any]:
    """A task body running one of tests/engine_callables.py."""
    run = {"executor": "python", "function": f"engine_callables:{function}", "args": args}
    return {"needs": list(needs), "run": run}


PIPELINE = {
    "name": "pipeline",
    "description": "Fetch, build in parallel, then publish.",
    "inputs": {"target": {"type": "string", "description": "what to build"}},
    "tasks": [
        {"id": "fetch", **py("record", name="f")},
        {"id": "lint", **py("noop", ("fetch",))},
        {"id": "build", **py("hold", ("fetch",), name="build")},
        {"id": "test", **py("noop", ("build",))},
        {"id": "publish", **py("noop", ("lint", "test"))},
    ],
}
FAILING = {
    "name": "flaky-deploy",
    "tasks": [
        {"id": "deploy", "run": {"executor": "local", "shell": "echo 'no route' >&2; exit 7"}}
    ],
}


@pytest.fixture
async def site(tmp_path: Path) -> AsyncIterator[Dashboard]:
    engine_callables.reset()
    async with dashboard(tmp_path) as served:
        for document in (PIPELINE, FAILING):
            await served.hub.workflows.define(document)
        yield served
    engine_callables.reset()


@pytest.fixture
async def page(site: Dashboard) -> AsyncIterator[Any]:
    async with playwright_api.async_playwright() as driver:
        browser = await driver.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        context = await browser.new_context(viewport={"width": 1280, "height": 900})
        context.set_default_timeout(TIMEOUT_MS)
        tab = await context.new_page()
        try:
            yield tab
        finally:
            await context.close()
            await browser.close()


async def sign_in(page: Any, site: Dashboard, role: Role = Role.OPERATOR) -> None:
    await page.goto(f"{site.url}/")
    await page.wait_for_url("**/signin?next=*")
    await page.fill("#token", site.tokens[role])
    await page.click("button[type=submit]")
    await page.wait_for_url(f"{site.url}/")
    await playwright_api.expect(page.locator("h1")).to_have_text("Overview")


def shot(name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS / name


async def test_start_a_run_from_the_form_and_watch_it_turn_green(
    page: Any, site: Dashboard
) -> None:
    expect = playwright_api.expect
    await sign_in(page, site)
    await page.click("nav >> text=Workflows")
    await page.click("a[href='/workflows/pipeline']")
    await page.click("button:has-text('Run pipeline')")  # without the required input
    await expect(page.locator("#input\\.target-error")).to_contain_text("missing required input")
    await page.fill("#input\\.target", "docs")
    await page.click("button:has-text('Run pipeline')")
    await page.wait_for_url("**/runs/run_*")
    await expect(page.locator("#task-build")).to_have_attribute("data-status", "running")
    await page.evaluate("window.__stayed = true")  # gone if the page reloads
    await page.screenshot(path=shot("run-page-running.png"), full_page=True)

    engine_callables.gates["build"].set()
    for task in ("build", "test", "publish"):
        await expect(page.locator(f"#task-{task}")).to_have_attribute("data-status", "succeeded")
    await expect(page.locator("#run-summary .badge").first).to_have_text("succeeded")
    assert await page.evaluate("window.__stayed === true"), "the page reloaded"
    await page.click("#run-tasks a:has-text('fetch')")
    await expect(page.locator("#task-panel")).to_contain_text('"name": "f"')
    await page.click("#task-build")  # a box of the graph opens that task's panel
    await page.wait_for_url("**?task=build*")
    await expect(page.locator("#task-panel")).to_contain_text('"build"')
    await page.screenshot(path=shot("run-page.png"), full_page=True)
    await page.set_viewport_size({"width": 390, "height": 844})
    await page.screenshot(path=shot("run-page-narrow.png"), full_page=True)


async def test_cancel_a_run_and_replay_a_dead_letter(page: Any, site: Dashboard) -> None:
    expect = playwright_api.expect
    held = await site.hub.runs.start("pipeline", {"target": "x"})
    failed = await site.hub.runs.start("flaky-deploy")
    with anyio.fail_after(WAIT):
        await engine_callables.entered["build"].wait()
        assert (await site.hub.runs.wait(failed.id)).status is RunStatus.FAILED
    await sign_in(page, site)
    await page.screenshot(path=shot("overview.png"), full_page=True)

    await page.goto(f"{site.url}/runs/{held.id}")
    page.once("dialog", lambda dialog: dialog.accept())
    await page.click("#cancel-run")
    await expect(page.locator("#run-summary .badge").first).to_have_text("cancelled")
    await expect(page.locator("#task-build")).to_have_attribute("data-status", "cancelled")
    assert (await site.hub.runs.get(held.id)).run.status is RunStatus.CANCELLED

    await page.click("nav >> text=Dead letters")
    await expect(page.locator("table")).to_contain_text("no route")
    await page.click("button:has-text('Replay')")
    await page.wait_for_url(f"**/runs/{failed.id}")
    with anyio.fail_after(WAIT):
        await site.hub.runs.wait(failed.id)
    letters = await site.hub.dead_letters.list(include_replayed=True)
    assert letters[0].replayed_at is not None
    await page.set_viewport_size({"width": 390, "height": 844})
    await page.goto(f"{site.url}/")
    await page.screenshot(path=shot("overview-narrow.png"), full_page=True)
