"""The engine session a Dagger executor's attempts share, and its SDK connection.

Opening one is the slow part of an attempt: on the CLI route `dagger session` takes seconds
to start, and on every route connecting loads the API (the SDK introspects a schema of some
450 KB, tens of milliseconds of the event loop's time). So the first attempt opens a session
and the ones after it reuse it, connection and all; attempts that arrive while it is being
opened wait for that same opening.

An opening runs as a task of its own, not of the attempt that began it: an attempt that is
cancelled or times out while waiting leaves it to the others. An attempt only ever abandons
its own query; a session ends when it is replaced and its last attempt is done, or when the
executor closes. It is replaced when it is found dead before an attempt (its `dagger
session` exited or its port refuses connections), when an attempt lost the engine (`lose`),
or when the engine is found by another route. The connection is never torn down under an
attempt that still uses it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field

from aop_mcp.executors.dagger_engine import Cli, CliSession, Session, start_cli_session

log = logging.getLogger(__name__)

Connect = Callable[[Session], Awaitable[object]]
Disconnect = Callable[[object], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Connector:
    """How a session's SDK connection is made and ended (`dagger_pipeline` gives both)."""

    connect: Connect
    disconnect: Disconnect


@dataclass(frozen=True, slots=True)
class _Opened:
    connection: object
    cli: CliSession | None  # the `dagger session` started for it, on the CLI route


@dataclass(eq=False, slots=True)
class Link:
    """One opened (or opening) session with its connection, and the attempts using it."""

    route: Session | Cli
    connector: Connector
    opening: asyncio.Task[_Opened]
    users: int = 0
    lost: bool = False
    closing: asyncio.Task[None] | None = field(default=None, repr=False)

    @property
    def connection(self) -> object:
        """The SDK connection (only once `opening` is done)."""
        return self.opening.result().connection

    async def usable_for(self, route: Session | Cli) -> bool:
        """Whether a new attempt on `route` may use this link (it may still be opening)."""
        if self.lost or self.route != route:
            return False
        if not self.opening.done():
            return True
        if self.opening.cancelled() or self.opening.exception() is not None:
            return False
        cli = self.opening.result().cli
        return cli is None or await cli.answers()


class SharedSession:
    """The session (and connection) a DaggerExecutor's attempts share; see the module
    docstring. `engine_env` is what a started `dagger session` gets its environment from;
    `start_timeout` bounds its start."""

    def __init__(self, engine_env: Mapping[str, str], start_timeout: float) -> None:
        self._engine_env = dict(engine_env)
        self._start_timeout = start_timeout
        self._current: Link | None = None
        self._links: set[Link] = set()  # every link not yet closed, current or retired
        self._lock = asyncio.Lock()

    @contextlib.asynccontextmanager
    async def use(self, route: Session | Cli, connector: Connector) -> AsyncIterator[Link]:
        """Yield the link of a session on `route`, opened now or earlier, for one attempt.

        Raises what opening raised (EngineStartFailed, or the connector's error), which the
        attempt fails with; the next attempt opens a new session.
        """
        link = await self._acquire(route, connector)
        try:
            await asyncio.shield(link.opening)  # a cancelled waiter leaves it to the others
            yield link
        finally:
            self._release(link)

    def lose(self, link: Link) -> None:
        """The attempt using `link` lost the engine: later attempts open a new session."""
        link.lost = True
        self._retire(link)

    async def aclose(self) -> None:
        """Close every session: the connections, then the `dagger session` processes.

        Meant for when no attempt runs (the engine has stopped): one still running loses
        its connection.
        """
        self._current = None
        for link in list(self._links):
            self._close_later(link)
        closing = [link.closing for link in list(self._links) if link.closing is not None]
        await asyncio.gather(*closing, return_exceptions=True)

    async def _acquire(self, route: Session | Cli, connector: Connector) -> Link:
        # Checking a link's port awaits: the lock keeps two attempts from both replacing it.
        async with self._lock:
            link = self._current
            if link is None or not await link.usable_for(route):
                if link is not None:
                    self._retire(link)
                link = self._open(route, connector)
            link.users += 1
            return link

    def _open(self, route: Session | Cli, connector: Connector) -> Link:
        opening = asyncio.create_task(self._opened(route, connector), name="aop-dagger-session")
        opening.add_done_callback(_retrieve)
        link = self._current = Link(route, connector, opening)
        self._links.add(link)
        return link

    async def _opened(self, route: Session | Cli, connector: Connector) -> _Opened:
        if isinstance(route, Session):
            return _Opened(await connector.connect(route), None)
        cli = await start_cli_session(route, self._engine_env, start_timeout=self._start_timeout)
        try:
            return _Opened(await connector.connect(cli.session), cli)
        except BaseException:
            await cli.end()
            raise

    def _release(self, link: Link) -> None:
        link.users -= 1
        if link is not self._current and link.users == 0:
            self._close_later(link)

    def _retire(self, link: Link) -> None:
        if self._current is link:
            self._current = None
        if link.users == 0:
            self._close_later(link)

    def _close_later(self, link: Link) -> None:
        """Close `link` in a task of its own, so no cancelled attempt can cut it short."""
        if link.closing is None:
            link.closing = asyncio.create_task(self._close(link), name="aop-dagger-close")
            link.closing.add_done_callback(lambda _: self._links.discard(link))

    async def _close(self, link: Link) -> None:
        link.opening.cancel()  # an opening nobody waits for any more
        await asyncio.wait([link.opening])
        if link.opening.cancelled() or link.opening.exception() is not None:
            return  # what it had started, it ended itself
        opened = link.opening.result()
        try:
            await link.connector.disconnect(opened.connection)
        except Exception:
            log.exception("closing the connection to a Dagger session failed")
        finally:
            if opened.cli is not None:
                await opened.cli.end()


def _retrieve(task: asyncio.Task[_Opened]) -> None:
    """Take a failed opening's exception: the attempts that waited for it have reported it,
    and one that nobody waited for any more must not be logged as never retrieved."""
    if not task.cancelled():
        task.exception()
