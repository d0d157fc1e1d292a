"""The Store in plain dicts: same semantics as SQLite, for tests and library users.

Writes are validated before anything is applied, so a failing write changes nothing. JSON
values (inputs, documents, event data, outputs) are stored as SQLite would return them.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence
from dataclasses import replace
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
    AttemptStatus,
    CacheEntry,
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
from aop_mcp.store import buckets, codec

_ACTIVE = (RunStatus.PENDING, RunStatus.RUNNING)


class MemoryStore:
    """The Store protocol on dicts; state survives close() and open() of the same object."""

    def __init__(self) -> None:
        self._open = False
        self._workflows: dict[str, list[WorkflowVersion]] = {}
        self._runs: dict[str, Run] = {}
        self._run_by_key: dict[str, str] = {}
        self._task_runs: dict[str, dict[str, TaskRun]] = {}
        self._attempts: dict[tuple[str, str], dict[int, Attempt]] = {}
        self._events: list[Event] = []
        self._events_by_run: dict[str, list[Event]] = {}
        self._dead_letters: dict[str, DeadLetter] = {}
        self._cache: dict[str, CacheEntry] = {}
        self._leases: dict[str, RunLease] = {}
        self._tokens: dict[str, Token] = {}
        self._token_by_hash: dict[str, str] = {}
        self._agents: dict[str, Agent] = {}
        self._agent_versions: dict[str, dict[int, AgentVersion]] = {}
        self._secrets: dict[str, Secret] = {}

    async def open(self) -> None:
        """Mark the store open. Idempotent."""
        self._open = True

    async def close(self) -> None:
        """Mark the store closed (its data stays). Idempotent."""
        self._open = False

    def _check_open(self) -> None:
        if not self._open:
            raise StoreError("the memory store is not open; call open() first")

    # Workflows ---------------------------------------------------------------------

    async def save_workflow(
        self, name: str, document: dict[str, Any], digest: str, now: float
    ) -> tuple[WorkflowVersion, bool]:
        """Store `document` as the next version of `name` unless the latest has `digest`."""
        self._check_open()
        versions = self._workflows.setdefault(name, [])
        if versions and versions[-1].digest == digest:
            return versions[-1], False
        saved = WorkflowVersion(name, len(versions) + 1, digest, codec.normal(document), now)
        versions.append(saved)
        return saved, True

    async def get_workflow(self, name: str, version: int | None = None) -> WorkflowVersion:
        """The given version of a workflow, or its latest; raises WorkflowNotFound."""
        self._check_open()
        versions = self._workflows.get(name)
        if not versions or (version is not None and not 1 <= version <= len(versions)):
            raise WorkflowNotFound(name, version)
        return versions[-1 if version is None else version - 1]

    async def list_workflows(self) -> list[WorkflowVersion]:
        """The latest version of every workflow, by name."""
        self._check_open()
        return [self._workflows[name][-1] for name in sorted(self._workflows)]

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
        self._check_open()
        if run.idempotency_key in self._run_by_key:
            return self._runs[self._run_by_key[run.idempotency_key]], False
        if run.id in self._runs:
            raise StoreError(f"cannot create run {run.id!r}: a run with that id exists")
        changes = Changes(runs={run.id: run}, events=list(events))
        for task_run in task_runs:
            changes.put_task_run(task_run)
        self._validate(changes)
        self._apply(changes)
        if lease is not None:
            self._leases[run.id] = RunLease(run.id, lease.owner, lease.lease_until)
        return self._runs[run.id], True

    async def get_run(self, run_id: str) -> Run:
        """Raises RunNotFound."""
        self._check_open()
        return self._run(run_id)

    def _run(self, run_id: str) -> Run:
        try:
            return self._runs[run_id]
        except KeyError:
            raise RunNotFound(run_id) from None

    async def list_runs(
        self,
        *,
        workflow: str | None = None,
        statuses: Sequence[RunStatus] | None = None,
        limit: int = 50,
        before: str | None = None,
    ) -> list[Run]:
        """Runs, newest first; `before` is a run id to page from (exclusive)."""
        self._check_open()
        runs: Iterable[Run] = sorted(self._runs.values(), key=_age, reverse=True)
        if before is not None:
            start = _age(self._run(before))
            runs = (r for r in runs if _age(r) < start)
        if workflow is not None:
            runs = (r for r in runs if r.workflow == workflow)
        if statuses is not None:
            wanted = set(statuses)
            runs = (r for r in runs if r.status in wanted)
        return list(runs)[: max(limit, 0)]

    async def get_task_runs(self, run_id: str) -> list[TaskRun]:
        """The run's task runs in creation order; raises RunNotFound."""
        self._check_open()
        self._run(run_id)
        return list(self._task_runs.get(run_id, {}).values())

    async def get_task_run(self, run_id: str, task_id: str) -> TaskRun:
        """Raises TaskRunNotFound."""
        self._check_open()
        try:
            return self._task_runs[run_id][task_id]
        except KeyError:
            raise TaskRunNotFound(run_id, task_id) from None

    async def get_attempts(self, run_id: str, task_id: str) -> list[Attempt]:
        """Attempts of one task run, by number."""
        self._check_open()
        attempts = self._attempts.get((run_id, task_id), {})
        return [attempts[number] for number in sorted(attempts)]

    async def get_run_attempts(self, run_id: str) -> list[Attempt]:
        """Every attempt of a run by started_at, task run order, number; RunNotFound."""
        self._check_open()
        self._run(run_id)
        order = {task_id: seq for seq, task_id in enumerate(self._task_runs.get(run_id, {}))}
        attempts = [
            attempt
            for task_id in order
            for attempt in self._attempts.get((run_id, task_id), {}).values()
        ]
        return sorted(attempts, key=lambda a: (a.started_at, order[a.task_id], a.number))

    async def count_runs(self, *, workflow: str | None = None) -> dict[RunStatus, int]:
        """Runs per status (every status a key, 0 for none), of one workflow when given."""
        self._check_open()
        counts = dict.fromkeys(RunStatus, 0)
        for run in self._runs.values():
            if workflow is None or run.workflow == workflow:
                counts[run.status] += 1
        return counts

    async def task_throughput(
        self, *, since: float, until: float, bucket_seconds: float
    ) -> list[int]:
        """Task runs finished per bucket of [since, until), zeros included; InvalidQuery."""
        self._check_open()
        count = buckets.bucket_count(since, until, bucket_seconds)
        finished = (t.finished_at for tasks in self._task_runs.values() for t in tasks.values())
        counted = (
            (buckets.bucket_of(at, since, bucket_seconds), 1)
            for at in finished
            if at is not None and since <= at < until
        )
        return buckets.dense(counted, count)

    async def request_cancel(self, run_id: str) -> Run:
        """Mark an unfinished run for cancellation; raises RunNotFound."""
        self._check_open()
        run = self._run(run_id)
        if not run.status.finished and not run.cancel_requested:
            run = self._runs[run_id] = replace(run, cancel_requested=True)
        return run

    async def commit(self, changes: Changes) -> list[Event]:
        """Apply a batch atomically (validated first) and return its events with their seq."""
        self._check_open()
        self._validate(changes)
        return self._apply(changes)

    # Events ------------------------------------------------------------------------

    async def list_events(
        self, *, run_id: str | None = None, after: int = 0, limit: int = 1000
    ) -> list[Event]:
        """Events with seq > `after`, oldest first."""
        self._check_open()
        events = self._events if run_id is None else self._events_by_run.get(run_id, [])
        start = bisect.bisect_right(events, after, key=lambda e: e.seq)
        return events[start : start + max(limit, 0)]

    # Ownership ---------------------------------------------------------------------

    async def active_runs(self) -> list[tuple[Run, RunLease | None]]:
        """Every run not finished, with its lease if it has one."""
        self._check_open()
        active = sorted((r for r in self._runs.values() if r.status in _ACTIVE), key=_age)
        return [(run, self._leases.get(run.id)) for run in active]

    async def acquire_run(
        self, run_id: str, owner: Owner, lease_until: float, expected: RunLease | None
    ) -> bool:
        """Take the lease on a run if it is still `expected` (compare-and-set)."""
        self._check_open()
        self._run(run_id)
        if self._leases.get(run_id) != expected:
            return False
        self._leases[run_id] = RunLease(run_id, owner, lease_until)
        return True

    async def renew_leases(self, owner: Owner, lease_until: float) -> int:
        """Extend the leases of `owner` (runs and running attempts); returns runs renewed."""
        self._check_open()
        held = [lease for lease in self._leases.values() if lease.owner.id == owner.id]
        for lease in held:
            self._leases[lease.run_id] = replace(lease, lease_until=lease_until)
        for attempts in self._attempts.values():
            for number, attempt in attempts.items():
                if attempt.worker == owner.id and attempt.status is AttemptStatus.RUNNING:
                    attempts[number] = replace(attempt, lease_until=lease_until)
        return len(held)

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
        self._check_open()
        high = None if before is None else _letter_key(self._letter(before))
        low = None if after is None else _letter_key(self._letter(after))
        letters = sorted(self._dead_letters.values(), key=_letter_key, reverse=newest_first)
        chosen = (
            d
            for d in letters
            if (run_id is None or d.run_id == run_id)
            and (include_replayed or d.replayed_at is None)
            and (high is None or _letter_key(d) < high)
            and (low is None or _letter_key(d) > low)
        )
        return list(islice(chosen, None if limit is None else max(limit, 0)))

    async def count_dead_letters(self, *, include_replayed: bool = False) -> int:
        """How many dead letters there are (replayed ones only when asked for)."""
        self._check_open()
        letters = self._dead_letters.values()
        return sum(include_replayed or d.replayed_at is None for d in letters)

    async def get_dead_letter(self, dead_letter_id: str) -> DeadLetter:
        """Raises DeadLetterNotFound."""
        self._check_open()
        return self._letter(dead_letter_id)

    def _letter(self, dead_letter_id: str) -> DeadLetter:
        try:
            return self._dead_letters[dead_letter_id]
        except KeyError:
            raise DeadLetterNotFound(dead_letter_id) from None

    async def get_cached_output(
        self, key: str, not_before: float | None = None
    ) -> TaskOutput | None:
        """The output stored under a task cache key, if any stored at or after `not_before`."""
        self._check_open()
        entry = self._cache.get(key)
        if entry is None or (not_before is not None and entry.created_at < not_before):
            return None
        return entry.output

    async def clear_cache(self) -> int:
        """Remove every cache entry; returns how many there were."""
        self._check_open()
        count = len(self._cache)
        self._cache.clear()
        return count

    # Tokens ------------------------------------------------------------------------

    async def save_token(self, token: Token) -> None:
        """Insert a token; raises StoreError if its id or hash is already stored."""
        self._check_open()
        _require(token.id not in self._tokens, f"token {token.id!r} exists")
        _require(
            token.hash not in self._token_by_hash,
            f"a token with the same secret as {token.id!r} is already stored",
        )
        self._tokens[token.id] = token
        self._token_by_hash[token.hash] = token.id

    async def find_token(self, hash: str) -> Token | None:
        """The token whose secret has this SHA-256 hex digest (revoked or not), if any."""
        self._check_open()
        token_id = self._token_by_hash.get(hash)
        return None if token_id is None else self._tokens[token_id]

    async def list_tokens(self) -> list[Token]:
        """Every token, revoked ones too, oldest first."""
        self._check_open()
        return sorted(self._tokens.values(), key=lambda t: (t.created_at, t.id))

    async def revoke_token(self, token_id: str, now: float) -> Token:
        """Mark a token revoked at `now` (a revoked one keeps its first time); TokenNotFound."""
        self._check_open()
        token = self._token(token_id)
        if token.revoked_at is None:
            token = self._tokens[token_id] = replace(token, revoked_at=now)
        return token

    async def touch_token(self, token_id: str, now: float) -> None:
        """Set a token's `last_used_at` to `now`; raises TokenNotFound."""
        self._check_open()
        self._tokens[token_id] = replace(self._token(token_id), last_used_at=now)

    async def count_tokens(self) -> int:
        """How many tokens are not revoked."""
        self._check_open()
        return sum(token.revoked_at is None for token in self._tokens.values())

    def _token(self, token_id: str) -> Token:
        try:
            return self._tokens[token_id]
        except KeyError:
            raise TokenNotFound(token_id) from None

    # Agents ------------------------------------------------------------------------

    async def save_agent(self, agent: Agent, version: AgentVersion | None) -> None:
        """Upsert the agent, and insert `version` when given, atomically."""
        self._check_open()
        versions = self._agent_versions.get(agent.name, {})
        if version is not None:
            _require(
                version.name == agent.name and version.version not in versions,
                f"version {version.version} of agent {version.name!r} is stored already",
            )
        self._agents[agent.name] = replace(agent, config=codec.normal(agent.config))
        if version is not None:
            stored = replace(version, config=codec.normal(version.config))
            self._agent_versions.setdefault(agent.name, {})[version.version] = stored

    async def get_agent(self, name: str) -> Agent:
        """Raises AgentNotFound."""
        self._check_open()
        try:
            return self._agents[name]
        except KeyError:
            raise AgentNotFound(name) from None

    async def list_agents(self, include_deregistered: bool = False) -> list[Agent]:
        """Agents by name; deregistered ones only when asked."""
        self._check_open()
        agents = (self._agents[name] for name in sorted(self._agents))
        return [a for a in agents if include_deregistered or a.deregistered_at is None]

    async def agent_versions(self, name: str) -> list[AgentVersion]:
        """Every configuration of an agent, oldest first (empty for an unknown name)."""
        self._check_open()
        versions = self._agent_versions.get(name, {})
        return [versions[number] for number in sorted(versions)]

    async def list_agent_attempts(self, agent: str, *, limit: int = 20) -> list[Attempt]:
        """The latest attempts the agent served, newest first (empty for an unknown name)."""
        self._check_open()
        served = [
            attempt
            for attempts in self._attempts.values()
            for attempt in attempts.values()
            if attempt.output is not None and attempt.output.agent == agent
        ]
        served.sort(key=lambda a: (a.started_at, a.run_id, a.task_id, a.number), reverse=True)
        return served[: max(limit, 0)]

    # Secrets -----------------------------------------------------------------------

    async def save_secret(self, name: str, ciphertext: str, now: float) -> Secret:
        """Store `ciphertext` as the next version of secret `name` (version 1 if new)."""
        self._check_open()
        old = self._secrets.get(name)
        if old is None:
            saved = Secret(name, 1, ciphertext, now, now)
        else:
            saved = replace(old, version=old.version + 1, ciphertext=ciphertext, updated_at=now)
        self._secrets[name] = saved
        return saved

    async def get_secret(self, name: str) -> Secret:
        """Raises SecretNotFound."""
        self._check_open()
        try:
            return self._secrets[name]
        except KeyError:
            raise SecretNotFound(name) from None

    async def list_secrets(self) -> list[Secret]:
        """Every secret, by name."""
        self._check_open()
        return [self._secrets[name] for name in sorted(self._secrets)]

    async def delete_secret(self, name: str) -> None:
        """Remove a secret; raises SecretNotFound."""
        self._check_open()
        if self._secrets.pop(name, None) is None:
            raise SecretNotFound(name)

    # Validate, then apply ------------------------------------------------------------

    def _validate(self, changes: Changes) -> None:
        """Raise StoreError for what SQLite's constraints would refuse; changes nothing."""
        runs = changes.runs.keys() | self._runs.keys()
        self._check_keys(changes.runs.values())
        for run_id, task_id in changes.task_runs:
            _require(run_id in runs, f"task run {task_id!r} belongs to unknown run {run_id!r}")
        for run_id, task_id, number in changes.attempts:
            _require(
                self._has_task_run(changes, run_id, task_id),
                f"attempt {number} of task {task_id!r} in run {run_id!r} has no task run",
            )
        for letter in changes.dead_letters.values():
            _require(
                self._has_task_run(changes, letter.run_id, letter.task_id),
                f"dead letter {letter.id!r} names task {letter.task_id!r} of run "
                f"{letter.run_id!r}, which has no task run",
            )
        for event in changes.events:
            _require(event.run_id in runs, f"event {event.type!r} names unknown run")

    def _check_keys(self, runs: Iterable[Run]) -> None:
        seen: dict[str, str] = {}
        for run in runs:
            key = run.idempotency_key
            if key is None:
                continue
            owner = seen.setdefault(key, run.id)
            stored = self._run_by_key.get(key, run.id)
            _require(owner == run.id and stored == run.id, f"idempotency key {key!r} is used")

    def _has_task_run(self, changes: Changes, run_id: str, task_id: str) -> bool:
        return (run_id, task_id) in changes.task_runs or task_id in self._task_runs.get(run_id, {})

    def _apply(self, changes: Changes) -> list[Event]:
        for run in changes.runs.values():
            self._put_run(run)
        for task_run in changes.task_runs.values():
            self._task_runs.setdefault(task_run.run_id, {})[task_run.task_id] = _stored(task_run)
        for attempt in changes.attempts.values():
            key = (attempt.run_id, attempt.task_id)
            self._attempts.setdefault(key, {})[attempt.number] = _stored(attempt)
        self._dead_letters.update(changes.dead_letters)
        for key, entry in changes.cache.items():
            self._cache[key] = replace(entry, output=_stored_output(entry.output))
        events = [self._append_event(event) for event in changes.events]
        for run_id in changes.released_runs:
            self._leases.pop(run_id, None)
        return events

    def _put_run(self, run: Run) -> None:
        old = self._runs.get(run.id)
        if old is not None and old.idempotency_key is not None:
            del self._run_by_key[old.idempotency_key]
        if run.idempotency_key is not None:
            self._run_by_key[run.idempotency_key] = run.id
        self._runs[run.id] = replace(run, inputs=codec.normal(run.inputs))

    def _append_event(self, new: NewEvent) -> Event:
        seq = self._events[-1].seq + 1 if self._events else 1
        event = Event(seq, new.run_id, new.type, new.at, new.task_id, codec.normal(new.data))
        self._events.append(event)
        self._events_by_run.setdefault(event.run_id, []).append(event)
        return event


def _age(run: Run) -> tuple[float, str]:
    return run.created_at, run.id


def _letter_key(letter: DeadLetter) -> tuple[float, str]:
    return letter.created_at, letter.id


def _require(ok: bool, problem: str) -> None:
    if not ok:
        raise StoreError(f"cannot write: {problem}; nothing was written")


def _stored_output(output: TaskOutput) -> TaskOutput:
    return TaskOutput.from_dict(codec.normal(output.to_dict()))


def _stored[T: (TaskRun, Attempt)](record: T) -> T:
    if record.output is None:
        return record
    return replace(record, output=_stored_output(record.output))
