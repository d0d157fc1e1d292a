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
        self, run: Run, task_runs: Sequence[TaskRun], events: Sequence[NewEvent]
    ) -> tuple[Run, bool]:
        """Insert a run with its task runs and events, atomically.

        If `run.idempotency_key` is already used, nothing is written and the existing run
        is returned with False.
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
        self, *, run_id: str | None = None, include_replayed: bool = False
    ) -> list[DeadLetter]:
        """Dead letters, oldest first."""
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
