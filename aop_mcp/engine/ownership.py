"""Which engine drives which run: leases, their renewal, and adopting orphaned runs.

Each run an engine drives carries a lease (owner, expiry) in the store. The engine renews
its leases well before they expire. A run whose lease expired, or whose owner process is
gone from this host, is an orphan: an engine started with `adopt_orphans` takes it over
and resumes it. Cancel requests made through another process reach the owner here too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from typing import TYPE_CHECKING

from aop_mcp.models import RunLease

if TYPE_CHECKING:
    from aop_mcp.engine.engine import Engine

log = logging.getLogger(__name__)

#: Owners alive in this process: a lease held by one of them is never taken over.
_LIVE_OWNERS: set[str] = set()

#: How often cancel requests and orphans are looked for, in seconds.
POLL_SECONDS = 1.0


class Leases:
    """Keeps an engine's leases alive and finds runs that need an engine."""

    def __init__(self, engine: Engine, *, adopt_orphans: bool) -> None:
        self._engine = engine
        self._adopt = adopt_orphans
        self._task: asyncio.Task[None] | None = None
        self._reload: set[str] = set()
        self.lease_until = 0.0

    def register(self) -> None:
        _LIVE_OWNERS.add(self._engine.owner.id)
        self.lease_until = self._engine.clock.now() + self._engine.limits.lease_seconds

    def unregister(self) -> None:
        _LIVE_OWNERS.discard(self._engine.owner.id)

    async def start(self) -> None:
        if self._adopt:
            await self.adopt_orphans()
        self._task = asyncio.create_task(self._keep(), name="aop-leases")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def reload_later(self, run_id: str) -> None:
        """Reload a run from the store on the next poll (after a failed commit)."""
        self._reload.add(run_id)

    async def acquire(self, run_id: str, expected: RunLease | None) -> bool:
        engine = self._engine
        return await engine.store.acquire_run(run_id, engine.owner, self.lease_until, expected)

    async def take_over(self, run_id: str) -> bool:
        """Take the lease on a run if nobody alive holds it; True when this engine has it."""
        for run, lease in await self._engine.store.active_runs():
            if run.id == run_id:
                return self.adoptable(lease) and await self.acquire(run_id, lease)
        return await self.acquire(run_id, None)  # a finished run holds no lease

    def adoptable(self, lease: RunLease | None) -> bool:
        """True when nobody alive holds `lease`."""
        if lease is None or lease.owner.id == self._engine.owner.id:
            return True
        if lease.lease_until < self._engine.clock.now():
            return True
        if lease.owner.host != os.uname().nodename:
            return False
        if lease.owner.pid == os.getpid():
            return lease.owner.id not in _LIVE_OWNERS
        return not _process_alive(lease.owner.pid)

    async def adopt_orphans(self) -> list[str]:
        """Take over and resume every run that no live engine drives."""
        adopted = []
        for run, lease in await self._engine.store.active_runs():
            if self._engine.drives(run.id) or not self.adoptable(lease):
                continue
            if lease is not None and lease.owner.id == self._engine.owner.id:
                # Ours already: a run just created with this engine's lease, between its
                # commit and its admission (`submit`). Taking it here would drive it twice;
                # a run this engine lost track of comes back through `reload_later` instead.
                continue
            if await self.acquire(run.id, lease):
                await self._engine.resume(run.id)
                adopted.append(run.id)
        if adopted:
            log.info("resumed %d run(s): %s", len(adopted), ", ".join(adopted))
        return adopted

    async def _keep(self) -> None:
        engine = self._engine
        renew_every = engine.limits.lease_seconds / 3
        last_renewal = engine.clock.now()
        while True:
            await engine.clock.sleep_until(engine.clock.now() + POLL_SECONDS)
            try:
                if engine.clock.now() - last_renewal >= renew_every:
                    await self._renew()
                    last_renewal = engine.clock.now()
                await self._poll()
            except Exception:
                log.exception("lease upkeep failed; trying again in %ss", POLL_SECONDS)

    async def _renew(self) -> None:
        self.lease_until = self._engine.clock.now() + self._engine.limits.lease_seconds
        await self._engine.store.renew_leases(self._engine.owner, self.lease_until)

    async def _poll(self) -> None:
        engine = self._engine
        for run_id in list(self._reload):
            self._reload.discard(run_id)
            await engine.resume(run_id)
        for run, _lease in await engine.store.active_runs():
            if run.cancel_requested and engine.drives(run.id):
                await engine.cancel(run.id)
        if self._adopt:
            await self.adopt_orphans()


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
