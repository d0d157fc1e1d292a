"""SQLite store specifics: group commit, durability, migrations, WAL, driver errors."""

from __future__ import annotations

import asyncio
import math
import sqlite3
from collections.abc import AsyncIterator, Callable
from dataclasses import fields
from pathlib import Path
from typing import Any

import anyio
import pytest
from store_contract import an_agent, version_of

from aop_mcp.errors import StoreError
from aop_mcp.models import (
    Agent,
    AgentVersion,
    Attempt,
    AttemptStatus,
    Changes,
    DeadLetter,
    FailureKind,
    NewEvent,
    Run,
    RunStatus,
    Secret,
    TaskError,
    TaskOutput,
    TaskRun,
    TaskStatus,
    Token,
)
from aop_mcp.store import MemoryStore, SqliteStore, codec, open_store, sqlite_batch
from aop_mcp.store.queries import QUERIES, migrations, parse_queries

pytestmark = pytest.mark.anyio

#: Parameters that are not fields of their record: copies of part of one, in a column of
#: their own so that an index can find them.
DERIVED = {Attempt: {"agent"}}  # output.agent
#: Columns the store fills itself, with no field or parameter.
STORE_OWNED = {TaskRun: {"seq"}}  # creation order


def a_run(run_id: str, key: str | None = None) -> Run:
    return Run(run_id, "wf", 1, RunStatus.PENDING, {"id": run_id}, 1.0, idempotency_key=key)


async def create(store: SqliteStore, run_id: str, key: str | None = None) -> tuple[Run, bool]:
    task_runs = [TaskRun(run_id, "a", TaskStatus.READY), TaskRun(run_id, "b", TaskStatus.PENDING)]
    return await store.create_run(a_run(run_id, key), task_runs, [NewEvent(run_id, "new", 1.0)])


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    opened = SqliteStore(tmp_path / "aop.db")
    await opened.open()
    yield opened
    await opened.close()


@pytest.fixture
def batches(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The size of every batch the group committer runs."""
    sizes: list[int] = []
    real = sqlite_batch.run_batch

    def counting(conn: sqlite3.Connection, units: list[Callable[..., Any]]) -> Any:
        sizes.append(len(units))
        return real(conn, units)

    monkeypatch.setattr(sqlite_batch, "run_batch", counting)
    return sizes


async def test_concurrent_create_runs_all_land_in_a_few_transactions(
    store: SqliteStore, batches: list[int]
) -> None:
    with anyio.fail_after(10):
        results = await asyncio.gather(*(create(store, f"run_{i:03}") for i in range(200)))
    assert all(created for _, created in results)
    assert len(await store.list_runs(limit=500)) == 200
    assert len(await store.list_events()) == 200
    assert sum(batches) == 200
    assert len(batches) < 20


async def test_a_failing_write_does_not_lose_the_others_in_its_batch(
    store: SqliteStore, batches: list[int]
) -> None:
    await create(store, "run_taken")
    bad = Changes(attempts={("run_taken", "x", 1): _attempt("run_taken", "x")})
    calls = [create(store, f"run_{i}") for i in range(20)]
    calls.insert(10, store.commit(bad))
    calls.insert(5, create(store, "run_taken"))  # the id is used: an IntegrityError
    with anyio.fail_after(10):
        results = await asyncio.gather(*calls, return_exceptions=True)
    failures = [r for r in results if isinstance(r, BaseException)]
    assert len(failures) == 2
    assert all(isinstance(f, StoreError) for f in failures)
    assert isinstance(failures[0].__cause__, sqlite3.Error)
    assert len(await store.list_runs(limit=100)) == 21
    assert await store.get_attempts("run_taken", "x") == []
    assert batches[-1] > 2  # the failures shared a transaction with successful writes


async def test_same_idempotency_key_in_one_batch_creates_one_run(store: SqliteStore) -> None:
    with anyio.fail_after(10):
        results = await asyncio.gather(*(create(store, f"run_{i}", key="k") for i in range(10)))
    runs = {run.id for run, _ in results}
    assert len(runs) == 1
    assert sum(created for _, created in results) == 1
    assert len(await store.list_runs()) == 1


async def test_writer_cancelled_before_its_batch_writes_nothing_and_blocks_nobody(
    store: SqliteStore,
) -> None:
    with anyio.fail_after(10):
        doomed = asyncio.ensure_future(create(store, "run_doomed"))
        others = [asyncio.ensure_future(create(store, f"run_{i}")) for i in range(5)]
        await asyncio.sleep(0)  # every writer has queued its unit; the batch has not run
        doomed.cancel()
        await asyncio.gather(*others)
    assert doomed.cancelled()
    assert {r.id for r in await store.list_runs()} == {f"run_{i}" for i in range(5)}


async def test_reopened_store_sees_everything_that_was_committed(tmp_path: Path) -> None:
    path = tmp_path / "aop.db"
    first = SqliteStore(path)
    await first.open()
    await first.save_workflow("wf", {"tasks": []}, "d1", 1.0)
    await create(first, "run_1", key="k")
    error = TaskError(FailureKind.ERROR, "boom")
    changes = Changes(
        dead_letters={"dl": DeadLetter("dl", "run_1", "a", 1, error, 2.0)},
        events=[NewEvent("run_1", "task.failed", 2.0, "a", {"why": "boom"})],
    )
    committed = await first.commit(changes)
    await first.close()

    second = SqliteStore(path)
    await second.open()
    try:
        assert (await second.get_workflow("wf")).digest == "d1"
        assert (await second.get_run("run_1")).idempotency_key == "k"
        assert [t.task_id for t in await second.get_task_runs("run_1")] == ["a", "b"]
        assert (await second.list_events())[-1] == committed[0]
        assert (await second.get_dead_letter("dl")).error == error
    finally:
        await second.close()


async def test_migrations_are_applied_once(tmp_path: Path) -> None:
    path = tmp_path / "aop.db"
    for _ in range(2):
        store = SqliteStore(path)
        await store.open()
        await store.close()
    with sqlite3.connect(path) as conn:
        applied = conn.execute("SELECT version FROM schema_migrations").fetchall()
    conn.close()
    assert [v for (v,) in applied] == [m.version for m in migrations()]


async def test_database_is_in_wal_mode_with_foreign_keys(store: SqliteStore) -> None:
    conn = sqlite3.connect(store.path)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    finally:
        conn.close()
    with pytest.raises(StoreError):
        await store.commit(Changes(events=[NewEvent("no-such-run", "x", 1.0)]))


async def test_open_creates_the_parent_directory(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "data" / "nested" / "aop.db")
    await store.open()
    try:
        assert store.path.exists()
    finally:
        await store.close()


async def test_a_file_that_is_not_a_database_raises_store_error(tmp_path: Path) -> None:
    path = tmp_path / "aop.db"
    path.write_bytes(b"this is not a database, just some bytes " * 100)
    store = SqliteStore(path)
    with pytest.raises(StoreError) as caught:
        await store.open()
    assert isinstance(caught.value.__cause__, sqlite3.Error)
    await store.close()


async def test_open_store_picks_memory_or_sqlite(tmp_path: Path) -> None:
    assert isinstance(open_store(None), MemoryStore)
    assert isinstance(open_store(":memory:"), MemoryStore)
    store = open_store(tmp_path / "aop.db")
    assert isinstance(store, SqliteStore)
    assert not store.path.exists()  # not opened yet


def test_every_record_field_has_a_column() -> None:
    run = a_run("r")
    task_run = TaskRun("r", "a", TaskStatus.READY)
    attempt = _attempt("r", "a")
    letter = DeadLetter("dl", "r", "a", 1, TaskError(FailureKind.ERROR, "x"), 1.0)
    token = Token("tok", "ci", "agent", "h", 1.0)
    agent = an_agent()
    agent_version = version_of(agent)
    secret = Secret("API_KEY", 1, "cipher", 1.0, 1.0)
    for record, params in [
        (agent, codec.agent_params(agent)),
        (agent_version, codec.agent_version_params(agent_version)),
        (run, codec.run_params(run)),
        (task_run, codec.task_run_params(task_run)),
        (attempt, codec.attempt_params(attempt)),
        (letter, codec.dead_letter_params(letter)),
        (token, codec.token_params(token)),
        (secret, codec.secret_params(secret)),
    ]:
        names = {f.name for f in fields(record)}  # type: ignore[arg-type]
        assert set(params) == names | DERIVED.get(type(record), set()), type(record)


async def test_every_column_is_a_record_field_or_said_to_be_something_else(
    store: SqliteStore,
) -> None:
    tables = {
        "runs": Run,
        "task_runs": TaskRun,
        "attempts": Attempt,
        "dead_letters": DeadLetter,
        "tokens": Token,
        "agents": Agent,
        "agent_versions": AgentVersion,
        "secrets": Secret,
    }
    conn = sqlite3.connect(store.path)
    try:
        for table, record in tables.items():
            columns = {
                row[1] for row in conn.execute("SELECT * FROM pragma_table_info(?)", (table,))
            }
            names = {f.name for f in fields(record)}
            extra = DERIVED.get(record, set()) | STORE_OWNED.get(record, set())
            assert columns == names | extra, table
    finally:
        conn.close()


def test_named_queries_are_unique() -> None:
    assert "get_run" in QUERIES
    with pytest.raises(ValueError, match="twice"):
        parse_queries("-- name: q\nSELECT 1\n-- name: q\nSELECT 2\n")


async def test_an_attempts_agent_column_holds_the_agent_its_output_names(
    store: SqliteStore,
) -> None:
    await create(store, "run_1")
    changes = Changes()
    changes.put_attempt(_ended("a", 1, TaskOutput(agent="alpha")))
    changes.put_attempt(_ended("a", 2, TaskOutput()))
    changes.put_attempt(_attempt("run_1", "b"))  # running: no output yet
    await store.commit(changes)
    rewritten = _ended("a", 1, TaskOutput(agent="beta"))
    await store.commit(Changes(attempts={("run_1", "a", 1): rewritten}))
    conn = sqlite3.connect(store.path)
    try:
        rows = conn.execute(
            "SELECT task_id, number, agent, output ->> '$.agent' FROM attempts ORDER BY 1, 2"
        ).fetchall()
    finally:
        conn.close()
    assert rows == [("a", 1, "beta", "beta"), ("a", 2, None, None), ("b", 1, None, None)]


OLD_ROWS = """
INSERT INTO runs (id, workflow, workflow_version, status, inputs, created_at)
VALUES ('run_1', 'wf', 1, 'running', '{}', 1.0);
INSERT INTO task_runs (run_id, task_id, seq, status) VALUES ('run_1', 'a', 1, 'running');
INSERT INTO attempts (run_id, task_id, number, status, worker, started_at, output)
VALUES ('run_1', 'a', 1, 'failed', 'w', 1.0, '{"exit_code": 1, "stdout": "old"}');
"""


async def test_a_database_from_before_0006_gets_the_agent_column_and_keeps_its_attempts(
    tmp_path: Path,
) -> None:
    path = tmp_path / "aop.db"
    conn = sqlite3.connect(path)
    try:
        conn.execute(QUERIES["create_migrations_table"])
        for migration in (m for m in migrations() if m.version < 6):
            conn.executescript(migration.script)
            record = {"version": migration.version, "name": migration.name, "applied_at": 0}
            conn.execute(QUERIES["record_migration"], record)
        conn.executescript(OLD_ROWS)
    finally:
        conn.close()
    store = SqliteStore(path)
    await store.open()
    try:
        (old,) = await store.get_run_attempts("run_1")
        assert old.output == TaskOutput(1, "old")
        await store.commit(
            Changes(attempts={("run_1", "a", 2): _ended("a", 2, TaskOutput(agent="x"))})
        )
        assert [a.number for a in await store.list_agent_attempts("x")] == [2]
    finally:
        await store.close()


async def test_dashboard_queries_search_indexes_with_10000_runs(store: SqliteStore) -> None:
    await store.commit(_ten_thousand_runs())
    cursor = {"before_at": math.inf, "before_id": "", "limit": 50}
    letters = cursor | {"after_at": -math.inf, "after_id": "", "run_id": None}
    expected = {
        "count_runs": ({}, "SCAN runs USING COVERING INDEX runs_by_status"),
        "count_runs_of_workflow": (
            {"workflow": "wf_1"},
            "SEARCH runs USING COVERING INDEX runs_by_workflow_status (workflow=?)",
        ),
        "task_throughput": (
            {"since": 0.0, "until": 600.0, "bucket_seconds": 10.0},
            "SEARCH task_runs USING COVERING INDEX task_runs_by_finished "
            "(finished_at>? AND finished_at<?)",
        ),
        "list_runs": (cursor, "SEARCH runs USING INDEX runs_by_created ((created_at,id)<(?,?))"),
        "list_runs_in_status": (
            cursor | {"status": "running"},
            "SEARCH runs USING INDEX runs_by_status (status=? AND (created_at,id)<(?,?))",
        ),
        "list_runs_of_workflow": (
            cursor | {"workflow": "wf_1"},
            "SEARCH runs USING INDEX runs_by_workflow (workflow=? AND (created_at,id)<(?,?))",
        ),
        "list_runs_of_workflow_in_status": (
            cursor | {"workflow": "wf_1", "status": "running"},
            "SEARCH runs USING INDEX runs_by_workflow_status "
            "(workflow=? AND status=? AND (created_at,id)<(?,?))",
        ),
        "list_dead_letters_newest_first": (
            letters | {"include_replayed": 0},
            "SEARCH dead_letters USING INDEX dead_letters_by_created "
            "((created_at,id)>(?,?) AND (created_at,id)<(?,?))",
        ),
        "count_waiting_dead_letters": (
            {},
            "SCAN dead_letters USING INDEX dead_letters_waiting",
        ),
        "get_run_attempts": (
            {"run_id": "run_00001"},
            "SEARCH attempts USING INDEX sqlite_autoindex_attempts_1 (run_id=?)",
        ),
        "list_agent_attempts": (
            {"agent": "agent_1", "limit": 20},
            "SEARCH attempts USING INDEX attempts_by_agent (agent=?)",
        ),
    }
    conn = sqlite3.connect(store.path)
    try:
        for query, (params, first_step) in expected.items():
            plan = [row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + QUERIES[query], params)]
            assert plan[0] == first_step, (query, plan)
            # Sorting is allowed only where it sorts one run's few attempts.
            if query != "get_run_attempts":
                assert not any("ORDER BY" in step for step in plan), (query, plan)
    finally:
        conn.close()


def _ten_thousand_runs() -> Changes:
    """10,000 runs of three workflows, a finished task run and an attempt each."""
    changes = Changes()
    statuses = [RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.RUNNING]
    for i in range(10_000):
        run_id = f"run_{i:05d}"
        run = Run(run_id, f"wf_{i % 3}", 1, statuses[i % 3], {}, float(i))
        changes.put_run(run)
        changes.put_task_run(TaskRun(run_id, "a", TaskStatus.SUCCEEDED, finished_at=i + 0.5))
        output = TaskOutput(0, "ok", attempt=1, agent=f"agent_{i % 5}" if i % 2 else None)
        changes.put_attempt(
            Attempt(run_id, "a", 1, AttemptStatus.SUCCEEDED, "w", float(i), None, i + 0.5, output)
        )
        if i % 10 == 0:
            error = TaskError(FailureKind.ERROR, "x")
            changes.put_dead_letter(DeadLetter(f"dl_{i}", run_id, "a", 1, error, float(i)))
    return changes


def _attempt(run_id: str, task_id: str) -> Attempt:
    return Attempt(run_id, task_id, 1, AttemptStatus.RUNNING, "engine", 1.0, 2.0)


def _ended(task_id: str, number: int, output: TaskOutput) -> Attempt:
    return Attempt("run_1", task_id, number, AttemptStatus.SUCCEEDED, "w", 1.0, None, 2.0, output)
