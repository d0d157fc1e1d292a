"""Group commit: concurrent writes share one SQLite transaction.

Every write of the SQLite store is a *unit*, a function of the raw `sqlite3.Connection`.
Callers queue units; one flusher task takes everything queued, runs it on the database
thread in one transaction (one thread hop, one COMMIT) with a SAVEPOINT per unit, then
resolves each caller's future. A unit that fails rolls back only itself and its caller gets
the error; the other units of the batch commit. While a batch runs, new units queue up for
the next one, so 200 concurrent writes become a handful of transactions.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Awaitable, Callable
from typing import Any

from aop_mcp.errors import StoreError
from aop_mcp.store.queries import QUERIES as Q

Unit = Callable[[sqlite3.Connection], Any]
#: Runs `fn(conn, *args)` on the database thread and returns its result.
Hop = Callable[..., Awaitable[Any]]
Outcome = tuple[bool, Any]  # (True, result) or (False, exception)
_Queued = tuple[Unit, asyncio.Future[Any]]


def store_error(exc: BaseException, doing: str) -> StoreError:
    """A StoreError for a driver error, caused by it (as `raise ... from exc` would)."""
    error = StoreError(f"the SQLite store failed while {doing}: {exc}")
    error.__cause__ = exc
    return error


def run_batch(conn: sqlite3.Connection, units: list[Unit]) -> list[Outcome]:
    """Run units in one transaction, a savepoint each (a lone unit needs none).

    Runs on the database thread.
    """
    conn.execute(Q["begin_write"])
    try:
        if len(units) == 1:  # no savepoint needed: the transaction is the unit
            outcomes = [_run_alone(conn, units[0])]
        else:
            outcomes = [_run_unit(conn, unit) for unit in units]
        # A failed lone unit has no savepoint: rolling back the transaction undoes it.
        conn.execute(Q["commit"] if any(ok for ok, _ in outcomes) else Q["rollback"])
    except BaseException:
        if conn.in_transaction:
            conn.execute(Q["rollback"])
        raise
    return outcomes


def _run_alone(conn: sqlite3.Connection, unit: Unit) -> Outcome:
    try:
        return True, unit(conn)
    except Exception as exc:
        return False, _unit_error(exc)


def _run_unit(conn: sqlite3.Connection, unit: Unit) -> Outcome:
    conn.execute(Q["savepoint"])
    try:
        result = unit(conn)
    except Exception as exc:
        # If the whole transaction is gone (disk full, I/O error) this raises: the batch fails.
        conn.execute(Q["rollback_to_savepoint"])
        conn.execute(Q["release_savepoint"])
        return False, _unit_error(exc)
    conn.execute(Q["release_savepoint"])
    return True, result


def _unit_error(exc: Exception) -> Exception:
    return store_error(exc, "writing") if isinstance(exc, sqlite3.Error) else exc


class GroupCommitter:
    """Queues write units and commits them in batches through `hop`."""

    def __init__(self, hop: Hop) -> None:
        self._hop = hop
        self._queue: list[_Queued] = []
        self._flusher: asyncio.Task[None] | None = None
        self._closed = False

    async def submit(self, unit: Unit) -> Any:
        """Queue a unit; return its result once its batch has committed (or raise its error)."""
        if self._closed:
            raise StoreError("the SQLite store is closed; open it before writing")
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queue.append((unit, future))
        if self._flusher is None:
            self._flusher = asyncio.create_task(self._flush(), name="aop-store-group-commit")
        return await future

    async def close(self) -> None:
        """Refuse new units and wait for the queued ones to commit."""
        self._closed = True
        if self._flusher is not None:
            await asyncio.shield(self._flusher)

    def reopen(self) -> None:
        self._closed = False

    async def _flush(self) -> None:
        try:
            while self._queue:
                batch, self._queue = self._queue, []
                await self._commit(batch)
        finally:
            self._flusher = None
            stranded, self._queue = self._queue, []
            for _, future in stranded:  # only when the flusher itself was cancelled
                _settle(future, False, _batch_error(asyncio.CancelledError()))

    async def _commit(self, batch: list[_Queued]) -> None:
        live = [(unit, future) for unit, future in batch if not future.cancelled()]
        if not live:
            return
        try:
            outcomes = await self._hop(run_batch, [unit for unit, _ in live])
        except BaseException as exc:
            for _, future in live:
                _settle(future, False, _batch_error(exc))
            if not isinstance(exc, Exception):
                raise
            return
        for (_, future), (ok, value) in zip(live, outcomes, strict=True):
            _settle(future, ok, value)


def _batch_error(exc: BaseException) -> BaseException:
    if isinstance(exc, StoreError):
        fresh = StoreError(exc.message)
        fresh.__cause__ = exc.__cause__
        return fresh
    if isinstance(exc, asyncio.CancelledError):
        return StoreError("the SQLite store stopped before this write was confirmed")
    return store_error(exc, "committing")


def _settle(future: asyncio.Future[Any], ok: bool, value: Any) -> None:
    if future.done():
        return
    if ok:
        future.set_result(value)
    else:
        future.set_exception(value)
