"""Bearer tokens through TokenService, on a real SQLite file."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from aop_mcp.config import load_settings
from aop_mcp.engine.clock import ManualClock
from aop_mcp.errors import ConfigError, TokenNotFound
from aop_mcp.security.principal import Principal, Role
from aop_mcp.security.tokens import TOUCH_INTERVAL, VERIFIED_FOR, TokenService
from aop_mcp.store import SqliteStore

pytestmark = pytest.mark.anyio

PRESET = "a-preset-token-chosen-by-the-operator"


def files_bytes(directory: Path, pattern: str) -> bytes:
    """Everything written to the matching files (the database, its WAL and journal)."""
    return b"".join(path.read_bytes() for path in sorted(directory.glob(pattern)))


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    opened = SqliteStore(tmp_path / "aop.db")
    await opened.open()
    yield opened
    await opened.close()


@pytest.fixture
def tokens(store: SqliteStore, clock: ManualClock) -> TokenService:
    return TokenService(store, clock)


async def test_created_token_verifies_to_its_role_and_name(tokens: TokenService) -> None:
    token, plaintext = await tokens.create(Role.OPERATOR, "ci")
    assert plaintext.startswith("aop_")
    assert len(plaintext) > 40
    assert await tokens.verify(plaintext) == Principal(token.id, "ci", Role.OPERATOR)


async def test_each_created_token_is_different(tokens: TokenService) -> None:
    made = [await tokens.create(Role.VIEWER, "v") for _ in range(3)]
    assert len({plaintext for _, plaintext in made}) == 3
    assert len({token.id for token, _ in made}) == 3


async def test_missing_wrong_or_altered_token_verifies_to_nobody(tokens: TokenService) -> None:
    _, plaintext = await tokens.create(Role.ADMIN, "me")
    for presented in [None, "", "aop_", "aop_not-a-token", plaintext[:-1], plaintext + "x"]:
        assert await tokens.verify(presented) is None, presented


async def test_revoked_token_verifies_to_nobody(tokens: TokenService, clock: ManualClock) -> None:
    token, plaintext = await tokens.create(Role.AGENT, "worker")
    revoked = await tokens.revoke(token.id)
    assert revoked.revoked_at == clock.now()
    assert await tokens.verify(plaintext) is None
    assert [t.revoked_at for t in await tokens.list()] == [clock.now()]


async def test_a_verified_token_revoked_here_is_refused_at_once(tokens: TokenService) -> None:
    token, plaintext = await tokens.create(Role.OPERATOR, "ci")
    assert await tokens.verify(plaintext) is not None
    await tokens.revoke(token.id)
    assert await tokens.verify(plaintext) is None


async def test_a_token_revoked_by_another_process_is_refused_within_seconds(
    tokens: TokenService, store: SqliteStore, clock: ManualClock
) -> None:
    token, plaintext = await tokens.create(Role.OPERATOR, "ci")
    assert await tokens.verify(plaintext) is not None
    await TokenService(store, clock).revoke(token.id)  # as `aop token revoke` would
    clock.advance(VERIFIED_FOR)
    assert await tokens.verify(plaintext) is None


async def test_revoking_an_unknown_token_raises_token_not_found(tokens: TokenService) -> None:
    with pytest.raises(TokenNotFound):
        await tokens.revoke("tok_nope")


async def test_only_the_hash_of_a_token_reaches_the_database_file(
    tokens: TokenService, store: SqliteStore, tmp_path: Path
) -> None:
    _, plaintext = await tokens.create(Role.ADMIN, "secret-keeper")
    await tokens.verify(plaintext)
    await store.close()  # checkpoints the WAL into the main file
    written = files_bytes(tmp_path, "aop.db*")
    assert hashlib.sha256(plaintext.encode()).hexdigest().encode() in written
    assert plaintext.encode() not in written
    assert plaintext.removeprefix("aop_").encode() not in written


async def test_last_used_is_written_at_most_once_a_minute(
    tokens: TokenService, store: SqliteStore, clock: ManualClock
) -> None:
    token, plaintext = await tokens.create(Role.VIEWER, "dashboard")
    first_use = clock.now()
    await tokens.verify(plaintext)
    clock.advance(TOUCH_INTERVAL - 1)
    await tokens.verify(plaintext)
    assert (await store.find_token(token.hash)).last_used_at == first_use  # type: ignore[union-attr]
    clock.advance(1)
    await tokens.verify(plaintext)
    assert (await store.find_token(token.hash)).last_used_at == clock.now()  # type: ignore[union-attr]


async def test_list_shows_every_token_oldest_first(
    tokens: TokenService, clock: ManualClock
) -> None:
    first, _ = await tokens.create(Role.ADMIN, "first")
    clock.advance(1)
    second, _ = await tokens.create(Role.VIEWER, "  ")
    assert [(t.id, t.name, t.role) for t in await tokens.list()] == [
        (first.id, "first", "admin"),
        (second.id, "viewer", "viewer"),  # a blank name becomes the role's
    ]


async def test_bootstrap_creates_one_admin_the_first_time_only(tokens: TokenService) -> None:
    plaintext = await tokens.bootstrap(None)
    assert plaintext is not None
    principal = await tokens.verify(plaintext)
    assert principal is not None
    assert (principal.name, principal.role) == ("first-admin", Role.ADMIN)
    assert await tokens.bootstrap(None) is None
    assert len(await tokens.list()) == 1


async def test_bootstrap_creates_a_new_admin_when_every_token_is_revoked(
    tokens: TokenService,
) -> None:
    token, _ = await tokens.create(Role.OPERATOR, "ci")
    await tokens.revoke(token.id)
    assert await tokens.bootstrap(None) is not None


async def test_bootstrap_with_a_preset_stores_it_once_as_admin(tokens: TokenService) -> None:
    assert await tokens.bootstrap(PRESET) is None
    assert await tokens.bootstrap(PRESET) is None
    assert await tokens.verify(PRESET) == Principal(
        (await tokens.list())[0].id, "AOP_TOKEN", Role.ADMIN
    )
    assert len(await tokens.list()) == 1


async def test_bootstrap_with_a_preset_after_other_tokens_adds_it(
    tokens: TokenService, clock: ManualClock
) -> None:
    await tokens.create(Role.VIEWER, "dashboard")
    clock.advance(1)
    assert await tokens.bootstrap(PRESET) is None
    assert [t.name for t in await tokens.list()] == ["dashboard", "AOP_TOKEN"]


async def test_revoked_preset_stays_revoked_after_a_restart(tokens: TokenService) -> None:
    await tokens.bootstrap(PRESET)
    await tokens.revoke((await tokens.list())[0].id)
    assert await tokens.bootstrap(PRESET) is None
    assert await tokens.verify(PRESET) is None
    assert len(await tokens.list()) == 1


def test_aop_token_setting_is_read_and_never_shown(tmp_path: Path) -> None:
    settings = load_settings({"AOP_DATA_DIR": str(tmp_path), "AOP_TOKEN": PRESET})
    assert settings.token == PRESET
    assert PRESET not in repr(settings)
    assert load_settings({"AOP_DATA_DIR": str(tmp_path), "AOP_TOKEN": ""}).token is None


def test_too_short_aop_token_is_refused_without_repeating_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings({"AOP_DATA_DIR": str(tmp_path), "AOP_TOKEN": "hunter2"})
    assert caught.value.key == "AOP_TOKEN"
    assert "hunter2" not in str(caught.value)
