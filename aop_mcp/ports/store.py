"""The Store port: the only owner of durable state.

Every implementation passes the one contract suite in `tests/store_contract.py`.
Methods raise the `NotFound` errors of `aop_mcp.errors` for missing records and
`StoreError` for storage faults; no driver exception crosses this seam.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

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


class Store(Protocol):
    async def open(self) -> None:
        """Connect and apply pending migrations. Idempotent."""
        ...

    async def close(self) -> None:
        """Flush and release the store. Idempotent."""
        ...

    # Workflows ---------------------------------------------------------------

    async def save_workflow(
        self, name: str, document: dict[str, Any], digest: str, now: float
    ) -> tuple[WorkflowVersion, bool]:
        """Store a document as the next version of `name`, unless the latest has `digest`.

        Returns the version and whether it was created (False: the latest was unchanged).
        """
        ...

    async def get_workflow(self, name: str, version: int | None = None) -> WorkflowVersion:
        """The given version of a workflow, or its latest; raises WorkflowNotFound."""
        ...

    async def list_workflows(self) -> list[WorkflowVersion]:
        """The latest version of every workflow, by name."""
        ...

    # Runs --------------------------------------------------------------------

    async def create_run(
        self,
        run: Run,
        task_runs: Sequence[TaskRun],
        events: Sequence[NewEvent],
        lease: RunLease | None = None,
    ) -> tuple[Run, bool]:
        """Insert a run with its task runs, events and `lease`, atomically.

        With the lease written in the same transaction, a new run is never without an owner:
        no engine adopting orphans can take it before its creator drives it. If
        `run.idempotency_key` is already used, nothing is written and the existing run is
        returned with False.
        """
        ...

    async def get_run(self, run_id: str) -> Run:
        """Raises RunNotFound."""
        ...

    async def list_runs(
        self,
        *,
        workflow: str | None = None,
        statuses: Sequence[RunStatus] | None = None,
        limit: int = 50,
        before: str | None = None,
    ) -> list[Run]:
        """Runs, newest first; `before` is a run id to page from (exclusive)."""
        ...

    async def get_task_runs(self, run_id: str) -> list[TaskRun]:
        """The run's task runs, in the order they were created; raises RunNotFound."""
        ...

    async def get_task_run(self, run_id: str, task_id: str) -> TaskRun:
        """Raises TaskRunNotFound."""
        ...

    async def get_attempts(self, run_id: str, task_id: str) -> list[Attempt]:
        """Attempts of one task run, by number."""
        ...

    async def get_run_attempts(self, run_id: str) -> list[Attempt]:
        """Every attempt of a run, for its timeline; raises RunNotFound.

        Ordered by started_at, then by the task run's creation order, then by number.
        """
        ...

    async def count_runs(self, *, workflow: str | None = None) -> dict[RunStatus, int]:
        """How many runs there are in each status (of one workflow, when given).

        Every RunStatus is a key, with 0 when no run has it; the values sum to the total.
        """
        ...

    async def task_throughput(
        self, *, since: float, until: float, bucket_seconds: float
    ) -> list[int]:
        """How many task runs finished in each bucket of `bucket_seconds` from `since`.

        A task run counts once, in the bucket of its `finished_at`, which it has exactly when
        its status is final (succeeded, failed, skipped or cancelled); a replayed task counts
        when it finishes again. Only times in [since, until) count. The list is dense: one
        number per bucket, zeros included, ceil((until - since) / bucket_seconds) of them, the
        last bucket cut short at `until`; empty when `until <= since`. Raises InvalidQuery for
        a bucket that is not positive or for more than `buckets.MAX_BUCKETS` buckets.
        """
        ...

    async def request_cancel(self, run_id: str) -> Run:
        """Mark a run for cancellation by whichever engine drives it; raises RunNotFound."""
        ...

    async def commit(self, changes: Changes) -> list[Event]:
        """Apply a batch atomically (all or nothing) and return its events with their seq."""
        ...

    # Events ------------------------------------------------------------------

    async def list_events(
        self, *, run_id: str | None = None, after: int = 0, limit: int = 1000
    ) -> list[Event]:
        """Events with seq > `after`, oldest first."""
        ...

    # Ownership: which engine drives which run ---------------------------------

    async def active_runs(self) -> list[tuple[Run, RunLease | None]]:
        """Every run not finished, with its lease if it has one."""
        ...

    async def acquire_run(
        self, run_id: str, owner: Owner, lease_until: float, expected: RunLease | None
    ) -> bool:
        """Take the lease on a run if it is still `expected` (compare-and-set)."""
        ...

    async def renew_leases(self, owner: Owner, lease_until: float) -> int:
        """Extend every lease `owner` holds (runs and their running attempts); returns runs."""
        ...

    # Dead letters and cache --------------------------------------------------

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
        """Dead letters, oldest first (newest first when asked), at most `limit` of them.

        `before` and `after` are dead letter ids (exclusive) that bound the list by
        (created_at, id): a page of the newest-first list goes on with `before` set to the
        last id of the one before it, a page of the oldest-first list with `after`. Either
        raises DeadLetterNotFound for an unknown id. A negative limit is taken as 0.
        """
        ...

    async def count_dead_letters(self, *, include_replayed: bool = False) -> int:
        """How many dead letters there are (replayed ones only when asked for)."""
        ...

    async def get_dead_letter(self, dead_letter_id: str) -> DeadLetter:
        """Raises DeadLetterNotFound."""
        ...

    async def get_cached_output(
        self, key: str, not_before: float | None = None
    ) -> TaskOutput | None:
        """The output stored under a task cache key, if any stored at or after `not_before`."""
        ...

    async def clear_cache(self) -> int:
        """Remove every cache entry; returns how many there were."""
        ...

    # Tokens ------------------------------------------------------------------

    async def save_token(self, token: Token) -> None:
        """Insert a token; raises StoreError if its id or hash is already stored."""
        ...

    async def find_token(self, hash: str) -> Token | None:
        """The token whose secret has this SHA-256 hex digest (revoked or not), if any."""
        ...

    async def list_tokens(self) -> list[Token]:
        """Every token, revoked ones too, oldest first."""
        ...

    async def revoke_token(self, token_id: str, now: float) -> Token:
        """Mark a token revoked at `now` (a revoked one keeps its first time); TokenNotFound."""
        ...

    async def touch_token(self, token_id: str, now: float) -> None:
        """Set a token's `last_used_at` to `now`; raises TokenNotFound."""
        ...

    async def count_tokens(self) -> int:
        """How many tokens are not revoked."""
        ...

    # Agents ------------------------------------------------------------------

    async def save_agent(self, agent: Agent, version: AgentVersion | None) -> None:
        """Upsert the agent (one record per name); insert `version` too when given, atomically.

        A version that is already stored for the name is refused with StoreError and nothing
        is written.
        """
        ...

    async def get_agent(self, name: str) -> Agent:
        """The agent's current record, deregistered or not; raises AgentNotFound."""
        ...

    async def list_agents(self, include_deregistered: bool = False) -> list[Agent]:
        """Agents by name; deregistered ones only when asked."""
        ...

    async def agent_versions(self, name: str) -> list[AgentVersion]:
        """Every configuration an agent had, oldest first (empty for an unknown name)."""
        ...

    async def list_agent_attempts(self, agent: str, *, limit: int = 20) -> list[Attempt]:
        """The latest attempts the agent served (its name in their output), newest first.

        Newest by started_at, ties broken by run, task and number, descending. An attempt
        names its agent once it has ended with an output: running attempts, cancelled ones
        and cache hits are not listed. Empty for an unknown name; a negative limit is 0.
        """
        ...

    # Secrets -----------------------------------------------------------------

    async def save_secret(self, name: str, ciphertext: str, now: float) -> Secret:
        """Store `ciphertext` as the next version of secret `name` (version 1 if new).

        The store only ever sees ciphertext; encryption is the SecretService's job.
        """
        ...

    async def get_secret(self, name: str) -> Secret:
        """Raises SecretNotFound."""
        ...

    async def list_secrets(self) -> list[Secret]:
        """Every secret, by name."""
        ...

    async def delete_secret(self, name: str) -> None:
        """Remove a secret; raises SecretNotFound."""
        ...
