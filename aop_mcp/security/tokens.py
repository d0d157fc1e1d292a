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
from dataclasses import replace

from aop_mcp.engine.clock import Clock
from aop_mcp.models import Token, new_id
from aop_mcp.ports.store import Store
from aop_mcp.security.principal import Principal, Role

PREFIX = "aop_"
#: `last_used_at` is written at most this often per token, not on every request.
TOUCH_INTERVAL = 60.0
#: How long a verified token is trusted without asking the store again: a request then
#: costs no database read. Bounds how late a revocation made by another process bites.
VERIFIED_FOR = 5.0
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
        # hash -> (token, until when it may be trusted without the store); valid tokens only,
        # so the cache holds no more entries than there are tokens.
        self._verified: dict[str, tuple[Token, float]] = {}

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
        digest = token_hash(plaintext)
        now = self._clock.now()
        cached = self._verified.get(digest)
        if cached is not None and cached[1] > now and not _touch_due(cached[0], now):
            return principal_of(cached[0])
        token = await self._store.find_token(digest)
        if token is None or token.revoked_at is not None:
            self._verified.pop(digest, None)
            return None
        if _touch_due(token, now):
            # Inline and awaited so a failing write is not lost; only when due, so a busy
            # client costs one write a minute, not one per request.
            await self._store.touch_token(token.id, now)
            token = replace(token, last_used_at=now)
        self._verified[digest] = (token, now + VERIFIED_FOR)
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
        """Revoke a token from now on; raises TokenNotFound. Revoking twice changes nothing.

        This process refuses it at once; another process that verified it in the last
        VERIFIED_FOR seconds may still accept it until then.
        """
        token = await self._store.revoke_token(token_id, self._clock.now())
        self._verified.pop(token.hash, None)
        return token

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


def _touch_due(token: Token, now: float) -> bool:
    return token.last_used_at is None or now - token.last_used_at >= TOUCH_INTERVAL
