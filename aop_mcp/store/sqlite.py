"""The SQLite store: aiosqlite on one connection in WAL mode, with group commit.

Reads take one hop to aiosqlite's thread each. Writes are units of `sqlite_batch`: queued,
then committed in batches, one hop and one transaction per batch. sqlite3 errors become
`StoreError` here; nothing above this adapter sees a driver exception.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import aiosqlite

from aop_mcp.errors import StoreError
from aop_mcp.models import (
    Agent,
    AgentVersion,
    Attempt,
    Changes,
    DeadLetter,
    Event,
    NewEvent,
    Owner,
    Run,
    RunLease,
    RunStatus,
    Secret,
    TaskOutput,
    TaskRun,
    Token,
    WorkflowVersion,
)
from aop_mcp.store import sqlite_ops as ops
from aop_mcp.store.queries import QUERIES as Q
from aop_mcp.store.queries import Migration, migrations
from aop_mcp.store.sqlite_batch import GroupCommitter, store_error


class SqliteStore:
    """The Store on a SQLite file (created with its directory on `open()`)."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._db: aiosqlite.Connection | None = None
        self._writer = GroupCommitter(self._hop)

    # Lifecycle ---------------------------------------------------------------------

    async def open(self) -> None:
        """Connect, configure the connection and apply pending migrations. Idempotent."""
        if self._db is not None:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = await aiosqlite.connect(self.path, autocommit=True)
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"cannot open the SQLite store at {self.path}: {exc}") from exc
        self._db = db
        try:
            await self._hop(_prepare)
        except BaseException:
            await self.close()
            raise
        self._writer.reopen()

    async def close(self) -> None:
        """Wait for queued writes, then close the connection. Idempotent."""
        await self._writer.close()
        db, self._db = self._db, None
        if db is not None:
            try:
                await db.close()
            except sqlite3.Error as exc:
                raise StoreError(f"closing the SQLite store failed: {exc}") from exc

    async def _hop(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run `fn(conn, *args)` on aiosqlite's thread, with the raw sqlite3 connection.

        aiosqlite has no public API to run a function on its thread; its private
        `Connection._execute` is used here, and only here, so that a whole transaction
        (every statement and the COMMIT) costs one thread hop instead of one per statement.
        uv.lock pins the aiosqlite version; re-check `_execute` and `_conn` when upgrading.
        """
        db = self._db
        if db is None:
            raise StoreError(f"the SQLite store at {self.path} is not open; call open() first")
        try:
            return await db._execute(fn, db._conn, *args)
        except sqlite3.Error as exc:
            raise store_error(exc, getattr(fn, "__name__", "working")) from exc

    async def _write(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Queue `fn(conn, *args)` as a unit of the next group commit; return its result."""
        if self._db is None:
            raise StoreError(f"the SQLite store at {self.path} is not open; call open() first")
        return await self._writer.submit(lambda conn: fn(conn, *args))

    # Workflows ---------------------------------------------------------------------

    async def save_workflow(
        self, name: str, document: dict[str, Any], digest: str, now: float
    ) -> tuple[WorkflowVersion, bool]:
        """Store `document` as the next version of `name` unless the latest has `digest`."""
        return await self._write(ops.save_workflow, name, document, digest, now)

    async def get_workflow(self, name: str, version: int | None = None) -> WorkflowVersion:
        """The given version of a workflow, or its latest; raises WorkflowNotFound."""
        return await self._hop(ops.get_workflow, name, version)

    async def list_workflows(self) -> list[WorkflowVersion]:
        """The latest version of every workflow, by name."""
        return await self._hop(ops.list_workflows)

    # Runs --------------------------------------------------------------------------

    async def create_run(
        self,
        run: Run,
        task_runs: Sequence[TaskRun],
        events: Sequence[NewEvent],
        lease: RunLease | None = None,
    ) -> tuple[Run, bool]:
        """Insert a run with its task runs, events and lease; an used idempotency key writes
        nothing."""
        return await self._write(ops.create_run, run, list(task_runs), list(events), lease)

    async def get_run(self, run_id: str) -> Run:
        """Raises RunNotFound."""
        return await self._hop(ops.get_run, run_id)

    async def list_runs(
        self,
        *,
        workflow: str | None = None,
        statuses: Sequence[RunStatus] | None = None,
        limit: int = 50,
        before: str | None = None,
    ) -> list[Run]:
        """Runs, newest first; `before` is a run id to page from (exclusive)."""
        return await self._hop(
            ops.list_runs, workflow, None if statuses is None else list(statuses), limit, before
        )

    async def get_task_runs(self, run_id: str) -> list[TaskRun]:
        """The run's task runs in creation order; raises RunNotFound."""
        return await self._hop(ops.get_task_runs, run_id)

    async def get_task_run(self, run_id: str, task_id: str) -> TaskRun:
        """Raises TaskRunNotFound."""
        return await self._hop(ops.get_task_run, run_id, task_id)

    async def get_attempts(self, run_id: str, task_id: str) -> list[Attempt]:
        """Attempts of one task run, by number."""
        return await self._hop(ops.get_attempts, run_id, task_id)

    async def get_run_attempts(self, run_id: str) -> list[Attempt]:
        """Every attempt of a run by started_at, task run order, number; RunNotFound."""
        return await self._hop(ops.get_run_attempts, run_id)

    async def count_runs(self, *, workflow: str | None = None) -> dict[RunStatus, int]:
        """Runs per status (every status a key, 0 for none), of one workflow when given."""
        return await self._hop(ops.count_runs, workflow)

    async def task_throughput(
        self, *, since: float, until: float, bucket_seconds: float
    ) -> list[int]:
        """Task runs finished per bucket of [since, until), zeros included; InvalidQuery."""
        return await self._hop(ops.task_throughput, since, until, bucket_seconds)

    async def request_cancel(self, run_id: str) -> Run:
        """Mark an unfinished run for cancellation; raises RunNotFound."""
        return await self._write(ops.request_cancel, run_id)

    async def commit(self, changes: Changes) -> list[Event]:
        """Apply a batch atomically and return its events with their seq."""
        if not changes:
            return []
        return await self._write(ops.apply_changes, changes)

    # Events ------------------------------------------------------------------------

    async def list_events(
        self, *, run_id: str | None = None, after: int = 0, limit: int = 1000
    ) -> list[Event]:
        """Events with seq > `after`, oldest first."""
        return await self._hop(ops.list_events, run_id, after, limit)

    # Ownership ---------------------------------------------------------------------

    async def active_runs(self) -> list[tuple[Run, RunLease | None]]:
        """Every run not finished, with its lease if it has one."""
        return await self._hop(ops.active_runs)

    async def acquire_run(
        self, run_id: str, owner: Owner, lease_until: float, expected: RunLease | None
    ) -> bool:
        """Take the lease on a run if it is still `expected` (compare-and-set)."""
        return await self._write(ops.acquire_run, run_id, owner, lease_until, expected)

    async def renew_leases(self, owner: Owner, lease_until: float) -> int:
        """Extend the leases of `owner` (runs and running attempts); returns runs renewed."""
        return await self._write(ops.renew_leases, owner, lease_until)

    # Dead letters and cache --------------------------------------------------------

    async def list_dead_letters(
        self,
        *,
        run_id: str | None = None,
        include_replayed: bool = False,
        newest_first: bool = False,
        limit: int | None = None,
        before: str | None = None,
        after: str | None = None,
    ) -> list[DeadLetter]:
        """Dead letters, oldest (or newest) first, bounded by `before`/`after` ids, paged."""
        return await self._hop(
            ops.list_dead_letters, run_id, include_replayed, newest_first, limit, before, after
        )

    async def count_dead_letters(self, *, include_replayed: bool = False) -> int:
        """How many dead letters there are (replayed ones only when asked for)."""
        return await self._hop(ops.count_dead_letters, include_replayed)

    async def get_dead_letter(self, dead_letter_id: str) -> DeadLetter:
        """Raises DeadLetterNotFound."""
        return await self._hop(ops.get_dead_letter, dead_letter_id)

    async def get_cached_output(
        self, key: str, not_before: float | None = None
    ) -> TaskOutput | None:
        """The output stored under a task cache key, if any stored at or after `not_before`."""
        return await self._hop(ops.get_cached_output, key, not_before)

    async def clear_cache(self) -> int:
        """Remove every cache entry; returns how many there were."""
        return await self._write(ops.clear_cache)

    # Tokens ------------------------------------------------------------------------

    async def save_token(self, token: Token) -> None:
        """Insert a token; raises StoreError if its id or hash is already stored."""
        await self._write(ops.save_token, token)

    async def find_token(self, hash: str) -> Token | None:
        """The token whose secret has this SHA-256 hex digest (revoked or not), if any."""
        return await self._hop(ops.find_token, hash)

    async def list_tokens(self) -> list[Token]:
        """Every token, revoked ones too, oldest first."""
        return await self._hop(ops.list_tokens)

    async def revoke_token(self, token_id: str, now: float) -> Token:
        """Mark a token revoked at `now` (a revoked one keeps its first time); TokenNotFound."""
        return await self._write(ops.revoke_token, token_id, now)

    async def touch_token(self, token_id: str, now: float) -> None:
        """Set a token's `last_used_at` to `now`; raises TokenNotFound."""
        await self._write(ops.touch_token, token_id, now)

    async def count_tokens(self) -> int:
        """How many tokens are not revoked."""
        return await self._hop(ops.count_tokens)

    # Agents ------------------------------------------------------------------------

    async def save_agent(self, agent: Agent, version: AgentVersion | None) -> None:
        """Upsert the agent, and insert `version` when given, atomically."""
        await self._write(ops.save_agent, agent, version)

    async def get_agent(self, name: str) -> Agent:
        """Raises AgentNotFound."""
        return await self._hop(ops.get_agent, name)

    async def list_agents(self, include_deregistered: bool = False) -> list[Agent]:
        """Agents by name; deregistered ones only when asked."""
        return await self._hop(ops.list_agents, include_deregistered)

    async def agent_versions(self, name: str) -> list[AgentVersion]:
        """Every configuration of an agent, oldest first (empty for an unknown name)."""
        return await self._hop(ops.agent_versions, name)

    async def list_agent_attempts(self, agent: str, *, limit: int = 20) -> list[Attempt]:
        """The latest attempts the agent served, newest first (empty for an unknown name)."""
        return await self._hop(ops.list_agent_attempts, agent, limit)

    # Secrets -----------------------------------------------------------------------

    async def save_secret(self, name: str, ciphertext: str, now: float) -> Secret:
        """Store `ciphertext` as the next version of secret `name` (version 1 if new)."""
        return await self._write(ops.save_secret, name, ciphertext, now)

    async def get_secret(self, name: str) -> Secret:
        """Raises SecretNotFound."""
        return await self._hop(ops.get_secret, name)

    async def list_secrets(self) -> list[Secret]:
        """Every secret, by name."""
        return await self._hop(ops.list_secrets)

    async def delete_secret(self, name: str) -> None:
        """Remove a secret; raises SecretNotFound."""
        await self._write(ops.delete_secret, name)


def _prepare(conn: sqlite3.Connection) -> None:
    """Configure a new connection and apply pending migrations (on the database thread)."""
    conn.row_factory = sqlite3.Row
    conn.executescript(Q["configure"])
    conn.execute(Q["create_migrations_table"])
    applied = {row[0] for row in conn.execute(Q["applied_migrations"])}
    for migration in migrations():
        if migration.version not in applied:
            _migrate(conn, migration)


def _migrate(conn: sqlite3.Connection, migration: Migration) -> None:
    """Apply one migration in its own transaction, unless another process just did."""
    conn.execute(Q["begin_write"])
    try:
        applied = {row[0] for row in conn.execute(Q["applied_migrations"])}
        if migration.version not in applied:
            conn.executescript(migration.script)
            record = {"version": migration.version, "name": migration.name}
            conn.execute(Q["record_migration"], record | {"applied_at": time.time()})
        conn.execute(Q["commit"])
    except BaseException:
        if conn.in_transaction:
            conn.execute(Q["rollback"])
        raise
