"""Bearer tokens: created with a role, stored hashed, verified at every door.

A token is `aop_` followed by 32 random bytes (URL-safe base64). The store keeps only its
SHA-256, so a presented token is found by hashing it and looking the hash up: no stored
secret is ever compared, and a copy of the database gives no access. The plaintext is
returned once, by `create` (or `bootstrap`), and never again.
"""

from __future__ import annotations

import builtins
import hashlib
import secrets

from aop_mcp.engine.clock import Clock
from aop_mcp.models import Token, new_id
from aop_mcp.ports.store import Store
from aop_mcp.security.principal import Principal, Role

PREFIX = "aop_"
#: `last_used_at` is written at most this often per token, not on every request.
TOUCH_INTERVAL = 60.0
#: Names of the tokens `bootstrap` stores.
PRESET_NAME = "AOP_TOKEN"
FIRST_ADMIN_NAME = "first-admin"


def token_hash(plaintext: str) -> str:
    """The hex SHA-256 a token is stored and looked up by."""
    # surrogatepass: any str hashes (headers may carry odd text); it just matches nothing.
    return hashlib.sha256(plaintext.encode("utf-8", "surrogatepass")).hexdigest()


def new_secret() -> str:
    """A fresh token: the prefix (so scanners and people recognise it) and 256 random bits."""
    return PREFIX + secrets.token_urlsafe(32)


def principal_of(token: Token) -> Principal:
    """Who a token authenticates."""
    return Principal(token_id=token.id, name=token.name, role=Role(token.role))


class TokenService:
    """Creates, verifies, lists and revokes bearer tokens."""

    def __init__(self, store: Store, clock: Clock) -> None:
        self._store = store
        self._clock = clock

    async def create(self, role: Role, name: str) -> tuple[Token, str]:
        """Store a new token; returns it and its plaintext, which is not kept anywhere.

        A blank name becomes the role's name.
        """
        plaintext = new_secret()
        token = await self._save(plaintext, Role(role), name.strip() or str(role))
        return token, plaintext

    async def verify(self, plaintext: str | None) -> Principal | None:
        """The principal of a presented token; None if missing, unknown or revoked."""
        if plaintext is None:
            return None
        # No checks on the text before hashing (prefix, length): the lookup by hash is
        # the only thing that depends on the secret.
        token = await self._store.find_token(token_hash(plaintext))
        if token is None or token.revoked_at is not None:
            return None
        await self._touch(token)
        return principal_of(token)

    async def bootstrap(self, preset: str | None) -> str | None:
        """Make sure the server can be reached; called by `aop serve` at start.

        With `preset` (AOP_TOKEN): store it as an admin token unless it is stored already
        (revoked or not: a revoked preset stays revoked), and return None. Without one:
        if no unrevoked token exists, create a `first-admin` token and return its plaintext
        for the server to print once; else None.
        """
        if preset is not None:
            if await self._store.find_token(token_hash(preset)) is None:
                await self._save(preset, Role.ADMIN, PRESET_NAME)
            return None
        if await self._store.count_tokens() > 0:
            return None
        _, plaintext = await self.create(Role.ADMIN, FIRST_ADMIN_NAME)
        return plaintext

    async def list(self) -> builtins.list[Token]:
        """Every token (revoked ones too), oldest first. Tokens hold hashes, never secrets."""
        return await self._store.list_tokens()

    async def revoke(self, token_id: str) -> Token:
        """Revoke a token from now on; raises TokenNotFound. Revoking twice changes nothing."""
        return await self._store.revoke_token(token_id, self._clock.now())

    async def _save(self, plaintext: str, role: Role, name: str) -> Token:
        token = Token(
            id=new_id("tok"),
            name=name,
            role=role.value,
            hash=token_hash(plaintext),
            created_at=self._clock.now(),
        )
        await self._store.save_token(token)
        return token

    async def _touch(self, token: Token) -> None:
        # Inline and awaited so a failing write is not lost, but only when stale: a busy
        # client costs one write a minute, not one per request.
        now = self._clock.now()
        if token.last_used_at is None or now - token.last_used_at >= TOUCH_INTERVAL:
            await self._store.touch_token(token.id, now)
