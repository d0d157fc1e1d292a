"""The dead-letter queue: tasks that failed for good, and replaying them."""

from __future__ import annotations

from dataclasses import dataclass

from aop_mcp.engine import Engine
from aop_mcp.models import DeadLetter, Run
from aop_mcp.ports.store import Store


@dataclass(frozen=True, slots=True)
class DeadLetterPage:
    letters: list[DeadLetter]
    next_cursor: str | None  # pass as `cursor` for the next page; None: this is the last


class DeadLetterService:
    def __init__(self, store: Store, engine: Engine) -> None:
        self._store = store
        self._engine = engine

    async def list(
        self, *, run_id: str | None = None, include_replayed: bool = False
    ) -> list[DeadLetter]:
        """Dead letters, oldest first; replayed ones only when asked for."""
        return await self._store.list_dead_letters(run_id=run_id, include_replayed=include_replayed)

    async def page(
        self,
        *,
        run_id: str | None = None,
        include_replayed: bool = False,
        newest_first: bool = False,
        limit: int = 50,
        cursor: str | None = None,
    ) -> DeadLetterPage:
        """One page of dead letters, oldest first (or newest first); `cursor` is the
        `next_cursor` of the page before. Raises DeadLetterNotFound for an unknown cursor."""
        if limit < 1:
            raise ValueError(f"limit must be at least 1, got {limit}")
        bound = {"before": cursor} if newest_first else {"after": cursor}
        # One more than asked tells whether another page exists.
        letters = await self._store.list_dead_letters(
            run_id=run_id,
            include_replayed=include_replayed,
            newest_first=newest_first,
            limit=limit + 1,
            **bound,
        )
        page = letters[:limit]
        return DeadLetterPage(page, page[-1].id if len(letters) > limit else None)

    async def get(self, dead_letter_id: str) -> DeadLetter:
        """One dead letter; raises DeadLetterNotFound."""
        return await self._store.get_dead_letter(dead_letter_id)

    async def replay(self, dead_letter_id: str) -> Run:
        """Run the task again in its run (with a fresh retry budget); the run continues."""
        return await self._engine.replay(dead_letter_id)
