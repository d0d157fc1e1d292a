"""The result cache: `cache: true` tasks reuse an earlier output instead of executing again.

Every task here appends a line to a counter file when it really runs, so "served from the
cache" is checked by a side effect that did not happen twice.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from engine_support import hub_on, run_to_end
from servers import clean_env

from aop_mcp.engine import ManualClock
from aop_mcp.errors import InvalidWorkflow
from aop_mcp.hub import Hub
from aop_mcp.workflow import CachePolicy, parse_workflow

pytestmark = pytest.mark.anyio

TIMEOUT = 60  # seconds any one command may take before the test fails


def counting(counter: Path, *, cache: Any = True, **run: Any) -> dict[str, Any]:
    """A workflow whose one task appends to `counter` and prints $GREETING."""
    spec = {
        "executor": "local",
        "shell": f'echo x >> {counter}; echo "$GREETING"',
        "env": {"GREETING": "hello"},
        **run,
    }
    return {"name": "counting", "tasks": [{"id": "work", "cache": cache, "run": spec}]}


def executions(counter: Path) -> int:
    return len(counter.read_text().splitlines()) if counter.exists() else 0


async def cached_flags(hub: Hub, *run_ids: str) -> list[bool]:
    return [(await hub.runs.task(r, "work")).task.cached for r in run_ids]


async def test_second_identical_run_is_served_from_the_cache(tmp_path: Path) -> None:
    counter = tmp_path / "count"
    async with hub_on(tmp_path) as hub:
        first = await run_to_end(hub, counting(counter))
        second = await run_to_end(hub, counting(counter))
        outputs = [(await hub.runs.task(r, "work")).task.output.stdout for r in (first, second)]
        flags = await cached_flags(hub, first, second)
    assert executions(counter) == 1
    assert outputs == ["hello\n", "hello\n"]
    assert flags == [False, True]


@pytest.mark.parametrize(
    "changed",
    [
        {"shell": "echo x >> {counter}; echo other"},
        {"env": {"GREETING": "bonjour"}},
        {"env": {"GREETING": "hello", "EXTRA": "1"}},
    ],
    ids=["command", "env value", "env name"],
)
async def test_a_changed_run_block_misses_the_cache(
    tmp_path: Path, changed: dict[str, Any]
) -> None:
    counter = tmp_path / "count"
    if "shell" in changed:
        changed = {"shell": changed["shell"].format(counter=counter)}
    async with hub_on(tmp_path) as hub:
        await run_to_end(hub, counting(counter))
        second = await run_to_end(hub, counting(counter, **changed))
        [flag] = await cached_flags(hub, second)
    assert executions(counter) == 2
    assert not flag


async def test_an_input_used_by_a_template_is_part_of_the_key(tmp_path: Path) -> None:
    counter = tmp_path / "count"
    document = counting(counter, env={"GREETING": "{{ inputs.who }}"})
    document["inputs"] = {"who": {"type": "string"}, "unused": {"default": "a"}}
    async with hub_on(tmp_path) as hub:
        await run_to_end(hub, document, who="ann")
        await run_to_end(hub, document, who="ann", unused="b")  # not in the run block: a hit
        assert executions(counter) == 1
        await run_to_end(hub, document, who="bob")
    assert executions(counter) == 2


async def test_a_new_executor_version_misses_the_cache(tmp_path: Path) -> None:
    counter = tmp_path / "count"
    async with hub_on(tmp_path) as hub:
        await run_to_end(hub, counting(counter))
        hub.engine.executors["local"].version = "2"  # type: ignore[misc]
        second = await run_to_end(hub, counting(counter))
        third = await run_to_end(hub, counting(counter))
        flags = await cached_flags(hub, second, third)
    assert executions(counter) == 2
    assert flags == [False, True]


async def test_an_entry_older_than_the_ttl_misses_the_cache(tmp_path: Path) -> None:
    counter = tmp_path / "count"
    document = counting(counter, cache={"ttl": "1h"})
    clock = ManualClock()
    async with hub_on(tmp_path, clock=clock) as hub:
        await run_to_end(hub, document)
        clock.advance(3599)
        young = await run_to_end(hub, document)
        clock.advance(2)
        expired = await run_to_end(hub, document)
        after = await run_to_end(hub, document)  # the new execution was cached afresh
        flags = await cached_flags(hub, young, expired, after)
    assert flags == [True, False, True]
    assert executions(counter) == 2


async def test_cache_true_never_expires(tmp_path: Path) -> None:
    counter = tmp_path / "count"
    clock = ManualClock()
    async with hub_on(tmp_path, clock=clock) as hub:
        await run_to_end(hub, counting(counter))
        clock.advance(10 * 365 * 86400)
        later = await run_to_end(hub, counting(counter))
        flags = await cached_flags(hub, later)
    assert flags == [True]
    assert executions(counter) == 1


def test_cache_takes_true_or_a_ttl() -> None:
    def cache_of(value: Any) -> Any:
        return parse_workflow(counting(Path("/dev/null"), cache=value)).tasks[0].cache

    assert cache_of(True) is True
    assert cache_of({"ttl": "1h"}) == CachePolicy(ttl=3600.0)
    assert cache_of({}) == CachePolicy(ttl=None)


@pytest.mark.parametrize(
    ("value", "field"),
    [("yes", "cache"), ({"ttl": "soon"}, "cache.ttl"), ({"tll": 60}, "cache.tll")],
)
def test_a_bad_cache_setting_names_its_field(value: Any, field: str) -> None:
    with pytest.raises(InvalidWorkflow) as caught:
        parse_workflow(counting(Path("/dev/null"), cache=value))
    [problem] = caught.value.problems
    assert (problem.task, problem.field) == ("work", field)


def test_aop_cache_clear_empties_the_cache_so_the_next_run_executes(tmp_path: Path) -> None:
    counter = tmp_path / "count"
    workflow = tmp_path / "counting.yaml"
    workflow.write_text(
        "name: counting\ntasks:\n  - id: work\n    cache: true\n"
        f"    run: {{executor: local, shell: 'echo x >> {counter}; echo hi'}}\n"
    )

    def aop(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "aop_mcp", *args],
            env=clean_env(tmp_path),
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            cwd=tmp_path,
        )

    assert aop("run", str(workflow)).returncode == 0
    second = aop("run", str(workflow), "--json")
    assert executions(counter) == 1
    shown = aop("runs", "show", json.loads(second.stdout)["id"])
    assert "cached" in shown.stdout
    cleared = aop("cache", "clear")
    assert cleared.returncode == 0, cleared.stderr
    assert cleared.stdout.strip() == "cleared 1 cached result"
    assert aop("run", str(workflow)).returncode == 0
    assert executions(counter) == 2
    assert aop("cache", "clear").stdout.strip() == "cleared 1 cached result"
