"""The store's operations as plain functions of a `sqlite3.Connection`.

They run on aiosqlite's thread: reads one hop each, writes as units of a group-commit batch
(`sqlite_batch`), inside a transaction the batch opened. They raise the NotFound errors of
`aop_mcp.errors`; sqlite3 errors are converted by the caller.
"""

from __future__ import annotations

import heapq
import math
import sqlite3
from collections.abc import Sequence
from itertools import islice
from typing import Any

from aop_mcp.errors import (
    AgentNotFound,
    DeadLetterNotFound,
    RunNotFound,
    SecretNotFound,
    StoreError,
    TaskRunNotFound,
    TokenNotFound,
    WorkflowNotFound,
)
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
    dumps,
)
from aop_mcp.store import buckets, codec
from aop_mcp.store.queries import QUERIES as Q

Conn = sqlite3.Connection


def _one(conn: Conn, query: str, params: dict[str, Any]) -> sqlite3.Row | None:
    row: sqlite3.Row | None = conn.execute(Q[query], params).fetchone()
    return row


def _all(conn: Conn, query: str, params: dict[str, Any]) -> list[sqlite3.Row]:
    return conn.execute(Q[query], params).fetchall()


# Reads -------------------------------------------------------------------------------


def get_workflow(conn: Conn, name: str, version: int | None) -> WorkflowVersion:
    if version is None:
        row = _one(conn, "latest_workflow", {"name": name})
    else:
        row = _one(conn, "get_workflow_version", {"name": name, "version": version})
    if row is None:
        raise WorkflowNotFound(name, version)
    return codec.workflow_of(row)


def list_workflows(conn: Conn) -> list[WorkflowVersion]:
    return [codec.workflow_of(row) for row in _all(conn, "list_workflows", {})]


def get_run(conn: Conn, run_id: str) -> Run:
    row = _one(conn, "get_run", {"id": run_id})
    if row is None:
        raise RunNotFound(run_id)
    return codec.run_of(row)


def list_runs(
    conn: Conn,
    workflow: str | None,
    statuses: Sequence[RunStatus] | None,
    limit: int,
    before: str | None,
) -> list[Run]:
    params: dict[str, Any] = {
        "workflow": workflow,
        "limit": max(limit, 0),
        # The first page's cursor is +infinity: the queries compare with a cursor always.
        "before_at": math.inf if before is None else get_run(conn, before).created_at,
        "before_id": "" if before is None else before,
    }
    if statuses is None:
        query = "list_runs" if workflow is None else "list_runs_of_workflow"
        rows = _all(conn, query, params)
    else:
        rows = _runs_in_statuses(conn, workflow, statuses, params)
    return [codec.run_of(row) for row in rows]


def _runs_in_statuses(
    conn: Conn, workflow: str | None, statuses: Sequence[RunStatus], params: dict[str, Any]
) -> list[sqlite3.Row]:
    """A page of the runs in any of `statuses`: a page of each status, merged newest first."""
    query = "list_runs_in_status" if workflow is None else "list_runs_of_workflow_in_status"
    pages = [_all(conn, query, params | {"status": str(s)}) for s in dict.fromkeys(statuses)]
    merged = heapq.merge(*pages, key=_age, reverse=True)
    return list(islice(merged, params["limit"]))


def _age(row: sqlite3.Row) -> tuple[float, str]:
    return row["created_at"], row["id"]


def get_task_runs(conn: Conn, run_id: str) -> list[TaskRun]:
    rows = _all(conn, "get_task_runs", {"run_id": run_id})
    if not rows:
        get_run(conn, run_id)
    return [codec.task_run_of(row) for row in rows]


def get_task_run(conn: Conn, run_id: str, task_id: str) -> TaskRun:
    row = _one(conn, "get_task_run", {"run_id": run_id, "task_id": task_id})
    if row is None:
        raise TaskRunNotFound(run_id, task_id)
    return codec.task_run_of(row)


def get_attempts(conn: Conn, run_id: str, task_id: str) -> list[Attempt]:
    rows = _all(conn, "get_attempts", {"run_id": run_id, "task_id": task_id})
    return [codec.attempt_of(row) for row in rows]


def get_run_attempts(conn: Conn, run_id: str) -> list[Attempt]:
    rows = _all(conn, "get_run_attempts", {"run_id": run_id})
    if not rows:
        get_run(conn, run_id)
    return [codec.attempt_of(row) for row in rows]


def count_runs(conn: Conn, workflow: str | None) -> dict[RunStatus, int]:
    query = "count_runs" if workflow is None else "count_runs_of_workflow"
    counts = dict.fromkeys(RunStatus, 0)
    for row in _all(conn, query, {"workflow": workflow}):
        counts[RunStatus(row["status"])] = row["runs"]
    return counts


def task_throughput(conn: Conn, since: float, until: float, bucket_seconds: float) -> list[int]:
    count = buckets.bucket_count(since, until, bucket_seconds)
    if count == 0:
        return []
    params = {"since": since, "until": until, "bucket_seconds": bucket_seconds}
    rows = _all(conn, "task_throughput", params)
    return buckets.dense(((row["bucket"], row["tasks"]) for row in rows), count)


def list_events(conn: Conn, run_id: str | None, after: int, limit: int) -> list[Event]:
    params = {"run_id": run_id, "after": after, "limit": limit}
    query = "list_events" if run_id is None else "list_events_of_run"
    return [codec.event_of(row) for row in _all(conn, query, params)]


def active_runs(conn: Conn) -> list[tuple[Run, RunLease | None]]:
    rows = _all(conn, "active_runs", {})
    return [(codec.run_of(row), codec.joined_lease_of(row)) for row in rows]


def list_dead_letters(
    conn: Conn,
    run_id: str | None,
    include_replayed: bool,
    newest_first: bool,
    limit: int | None,
    before: str | None,
    after: str | None,
) -> list[DeadLetter]:
    # An open end is bound as +/-infinity: the query compares with both bounds always.
    before_at, before_id = (math.inf, "") if before is None else _letter_key(conn, before)
    after_at, after_id = (-math.inf, "") if after is None else _letter_key(conn, after)
    params = {
        "run_id": run_id,
        "include_replayed": int(include_replayed),
        "limit": -1 if limit is None else max(limit, 0),  # SQLite: a negative LIMIT is none
        "before_at": before_at,
        "before_id": before_id,
        "after_at": after_at,
        "after_id": after_id,
    }
    query = "list_dead_letters_newest_first" if newest_first else "list_dead_letters"
    return [codec.dead_letter_of(row) for row in _all(conn, query, params)]


def _letter_key(conn: Conn, dead_letter_id: str) -> tuple[float, str]:
    letter = get_dead_letter(conn, dead_letter_id)
    return letter.created_at, letter.id


def count_dead_letters(conn: Conn, include_replayed: bool) -> int:
    # Two queries, not one with a parameter: only a literal `replayed_at IS NULL` lets
    # SQLite count from the partial index of waiting dead letters.
    query = "count_dead_letters" if include_replayed else "count_waiting_dead_letters"
    count: int = conn.execute(Q[query]).fetchone()[0]
    return count


def get_dead_letter(conn: Conn, dead_letter_id: str) -> DeadLetter:
    row = _one(conn, "get_dead_letter", {"id": dead_letter_id})
    if row is None:
        raise DeadLetterNotFound(dead_letter_id)
    return codec.dead_letter_of(row)


def get_cached_output(conn: Conn, key: str, not_before: float | None) -> TaskOutput | None:
    row = _one(conn, "get_cache", {"key": key, "not_before": not_before})
    return None if row is None else codec.output_of(row["output"])


def clear_cache(conn: Conn) -> int:
    return conn.execute(Q["clear_cache"]).rowcount


def get_token(conn: Conn, token_id: str) -> Token:
    row = _one(conn, "get_token", {"id": token_id})
    if row is None:
        raise TokenNotFound(token_id)
    return codec.token_of(row)


def find_token(conn: Conn, hash: str) -> Token | None:
    row = _one(conn, "find_token", {"hash": hash})
    return None if row is None else codec.token_of(row)


def list_tokens(conn: Conn) -> list[Token]:
    return [codec.token_of(row) for row in _all(conn, "list_tokens", {})]


def count_tokens(conn: Conn) -> int:
    count: int = conn.execute(Q["count_tokens"]).fetchone()[0]
    return count


def get_agent(conn: Conn, name: str) -> Agent:
    row = _one(conn, "get_agent", {"name": name})
    if row is None:
        raise AgentNotFound(name)
    return codec.agent_of(row)


def list_agents(conn: Conn, include_deregistered: bool) -> list[Agent]:
    rows = _all(conn, "list_agents", {"include_deregistered": int(include_deregistered)})
    return [codec.agent_of(row) for row in rows]


def agent_versions(conn: Conn, name: str) -> list[AgentVersion]:
    return [codec.agent_version_of(row) for row in _all(conn, "agent_versions", {"name": name})]


def list_agent_attempts(conn: Conn, agent: str, limit: int) -> list[Attempt]:
    rows = _all(conn, "list_agent_attempts", {"agent": agent, "limit": max(limit, 0)})
    return [codec.attempt_of(row) for row in rows]


def get_secret(conn: Conn, name: str) -> Secret:
    row = _one(conn, "get_secret", {"name": name})
    if row is None:
        raise SecretNotFound(name)
    return codec.secret_of(row)


def list_secrets(conn: Conn) -> list[Secret]:
    return [codec.secret_of(row) for row in _all(conn, "list_secrets", {})]


# Writes: each runs inside the transaction of a batch --------------------------------


def save_workflow(
    conn: Conn, name: str, document: dict[str, Any], digest: str, now: float
) -> tuple[WorkflowVersion, bool]:
    latest = _one(conn, "latest_workflow", {"name": name})
    if latest is not None and latest["digest"] == digest:
        return codec.workflow_of(latest), False
    version = 1 if latest is None else latest["version"] + 1
    saved = WorkflowVersion(name, version, digest, codec.normal(document), now)
    conn.execute(Q["insert_workflow"], _workflow_params(saved))
    return saved, True


def _workflow_params(workflow: WorkflowVersion) -> dict[str, Any]:
    return {
        "name": workflow.name,
        "version": workflow.version,
        "digest": workflow.digest,
        "document": dumps(workflow.document),
        "created_at": workflow.created_at,
    }


def create_run(
    conn: Conn,
    run: Run,
    task_runs: Sequence[TaskRun],
    events: Sequence[NewEvent],
    lease: RunLease | None,
) -> tuple[Run, bool]:
    if run.idempotency_key is not None:
        row = _one(conn, "get_run_by_idempotency_key", {"idempotency_key": run.idempotency_key})
        if row is not None:
            return codec.run_of(row), False
    conn.execute(Q["insert_run"], codec.run_params(run))
    _put_many(conn, "upsert_task_run", [codec.task_run_params(t) for t in task_runs])
    _insert_events(conn, events)
    if lease is not None:
        conn.execute(Q["insert_lease"], codec.lease_params(run.id, lease.owner, lease.lease_until))
    return get_run(conn, run.id), True


def request_cancel(conn: Conn, run_id: str) -> Run:
    conn.execute(Q["request_cancel"], {"id": run_id})
    return get_run(conn, run_id)


def apply_changes(conn: Conn, changes: Changes) -> list[Event]:
    _put_many(conn, "upsert_run", [codec.run_params(r) for r in changes.runs.values()])
    _put_many(
        conn, "upsert_task_run", [codec.task_run_params(t) for t in changes.task_runs.values()]
    )
    _put_many(conn, "upsert_attempt", [codec.attempt_params(a) for a in changes.attempts.values()])
    _put_many(
        conn,
        "upsert_dead_letter",
        [codec.dead_letter_params(d) for d in changes.dead_letters.values()],
    )
    cache = [
        {"key": k, "output": codec.output_text(e.output), "created_at": e.created_at}
        for k, e in changes.cache.items()
    ]
    _put_many(conn, "upsert_cache", cache)
    events = _insert_events(conn, changes.events)
    _put_many(conn, "release_lease", [{"run_id": r} for r in changes.released_runs])
    return events


def acquire_run(
    conn: Conn, run_id: str, owner: Owner, lease_until: float, expected: RunLease | None
) -> bool:
    get_run(conn, run_id)
    params = codec.lease_params(run_id, owner, lease_until)
    if expected is None:
        return conn.execute(Q["insert_lease"], params).rowcount == 1
    params |= {
        "expected_id": expected.owner.id,
        "expected_host": expected.owner.host,
        "expected_pid": expected.owner.pid,
        "expected_until": expected.lease_until,
    }
    return conn.execute(Q["replace_lease"], params).rowcount == 1


def renew_leases(conn: Conn, owner: Owner, lease_until: float) -> int:
    params = {"owner_id": owner.id, "lease_until": lease_until}
    conn.execute(Q["renew_attempt_leases"], params)
    return conn.execute(Q["renew_run_leases"], params).rowcount


def save_token(conn: Conn, token: Token) -> None:
    # Checked first for a message that says what clashed; the UNIQUE constraint still holds.
    if find_token(conn, token.hash) is not None:
        raise StoreError(
            f"cannot save token {token.id!r}: a token with the same secret is already stored; "
            "nothing was written"
        )
    conn.execute(Q["insert_token"], codec.token_params(token))


def revoke_token(conn: Conn, token_id: str, now: float) -> Token:
    conn.execute(Q["revoke_token"], {"id": token_id, "now": now})
    return get_token(conn, token_id)


def touch_token(conn: Conn, token_id: str, now: float) -> None:
    if conn.execute(Q["touch_token"], {"id": token_id, "now": now}).rowcount != 1:
        raise TokenNotFound(token_id)


def save_agent(conn: Conn, agent: Agent, version: AgentVersion | None) -> None:
    conn.execute(Q["upsert_agent"], codec.agent_params(agent))
    if version is not None:
        conn.execute(Q["insert_agent_version"], codec.agent_version_params(version))


def save_secret(conn: Conn, name: str, ciphertext: str, now: float) -> Secret:
    first = Secret(name, 1, ciphertext, now, now)
    conn.execute(Q["upsert_secret"], codec.secret_params(first))
    return get_secret(conn, name)


def delete_secret(conn: Conn, name: str) -> None:
    if conn.execute(Q["delete_secret"], {"name": name}).rowcount != 1:
        raise SecretNotFound(name)


def _put_many(conn: Conn, query: str, rows: list[dict[str, Any]]) -> None:
    if len(rows) == 1:
        conn.execute(Q[query], rows[0])
    elif rows:
        conn.executemany(Q[query], rows)


def _insert_events(conn: Conn, events: Sequence[NewEvent]) -> list[Event]:
    """Insert events; AUTOINCREMENT gives one transaction's rows consecutive seqs."""
    if not events:
        return []
    rows = [codec.event_params(e) for e in events]
    _put_many(conn, "insert_event", rows)
    last: int = conn.execute(Q["last_insert_seq"]).fetchone()[0]
    first = last - len(events) + 1
    return [codec.event_of(row | {"seq": first + i}) for i, row in enumerate(rows)]
