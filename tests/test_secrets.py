"""The hub's secrets: encrypted at rest, revealed to executors only, set by admins only."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest
from api_support import serving
from cryptography.fernet import Fernet
from engine_support import hub_on
from mcp import Client
from mcp_support import WAIT, call, failing, text
from test_mcp_http import mcp_client
from test_mcp_http import serving as serving_mcp

from aop_mcp.config import load_settings
from aop_mcp.engine.clock import ManualClock
from aop_mcp.errors import ConfigError, InvalidSecret, SecretKeyMismatch, SecretNotFound
from aop_mcp.mcp.server import McpDoor, create_mcp
from aop_mcp.security.principal import Role
from aop_mcp.security.secrets import SecretService, read_key_file
from aop_mcp.store import SqliteStore

pytestmark = pytest.mark.anyio

PLAINTEXT = "hunter2-very-secret-value"
TIMEOUT = 60  # seconds a CLI command may take


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    opened = SqliteStore(tmp_path / "aop.db")
    await opened.open()
    yield opened
    await opened.close()


def service(store: SqliteStore, key: bytes | None = None) -> SecretService:
    return SecretService(store, ManualClock(), key or Fernet.generate_key())


async def test_set_secret_reveals_its_value_and_the_file_holds_only_ciphertext(
    store: SqliteStore,
) -> None:
    secrets = service(store)
    await secrets.set("API_KEY", PLAINTEXT)
    assert await secrets.reveal("API_KEY") == PLAINTEXT
    await store.close()  # checkpoints the WAL into the file
    on_disk = b"".join(p.read_bytes() for p in store.path.parent.glob("aop.db*"))
    assert PLAINTEXT.encode() not in on_disk
    assert b"API_KEY" in on_disk


async def test_each_set_makes_a_new_version(store: SqliteStore) -> None:
    secrets = service(store)
    assert (await secrets.set("API_KEY", "one")).version == 1
    second = await secrets.set("API_KEY", "two")
    assert second.version == 2
    assert await secrets.reveal("API_KEY") == "two"


async def test_list_shows_names_and_versions_never_values(store: SqliteStore) -> None:
    secrets = service(store)
    await secrets.set("B_TOKEN", PLAINTEXT)
    await secrets.set("A_KEY", PLAINTEXT)
    listed = await secrets.list()
    assert [(s.name, s.version) for s in listed] == [("A_KEY", 1), ("B_TOKEN", 1)]
    assert PLAINTEXT not in repr(listed)
    assert not hasattr(listed[0], "value")
    assert not hasattr(listed[0], "ciphertext")


async def test_deleted_secret_cannot_be_revealed(store: SqliteStore) -> None:
    secrets = service(store)
    await secrets.set("API_KEY", PLAINTEXT)
    await secrets.delete("API_KEY")
    with pytest.raises(SecretNotFound):
        await secrets.reveal("API_KEY")


@pytest.mark.parametrize("name", ["1ABC", "has-dash", "", "A" * 65, "spa ce"])
async def test_invalid_name_is_refused_naming_the_field(store: SqliteStore, name: str) -> None:
    with pytest.raises(InvalidSecret) as caught:
        await service(store).set(name, PLAINTEXT)
    assert caught.value.field == "name"
    assert await store.list_secrets() == []


async def test_a_wrong_key_gives_a_clear_key_mismatch_error(store: SqliteStore) -> None:
    await service(store).set("API_KEY", PLAINTEXT)
    with pytest.raises(SecretKeyMismatch, match="another secret key") as caught:
        await service(store).reveal("API_KEY")
    assert caught.value.name == "API_KEY"


def test_key_file_is_created_0600_on_first_use_and_reused(tmp_path: Path) -> None:
    path = tmp_path / "data" / "secret.key"
    first = read_key_file(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert read_key_file(path) == first
    Fernet(first)  # a valid key


async def test_hub_creates_the_key_file_only_when_secrets_are_used(tmp_path: Path) -> None:
    async with hub_on(tmp_path) as hub:
        key_file = hub.settings.secret_key_path
        assert not key_file.exists()
        await hub.secrets.set("API_KEY", PLAINTEXT)
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    async with hub_on(tmp_path) as hub:
        assert await hub.secrets.reveal("API_KEY") == PLAINTEXT


def test_aop_secret_key_must_be_a_fernet_key_and_is_not_repeated(tmp_path: Path) -> None:
    env = {"AOP_DATA_DIR": str(tmp_path)}
    key = Fernet.generate_key().decode()
    assert load_settings({**env, "AOP_SECRET_KEY": key}).secret_key == key
    with pytest.raises(ConfigError, match="AOP_SECRET_KEY") as caught:
        load_settings({**env, "AOP_SECRET_KEY": "not-a-key-at-all"})
    assert "not-a-key-at-all" not in str(caught.value)


# --- CLI ------------------------------------------------------------------------------------


def aop(tmp_path: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AOP_")}
    env["AOP_DATA_DIR"] = str(tmp_path / "data")
    return subprocess.run(
        [sys.executable, "-m", "aop_mcp", *args],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        cwd=tmp_path,
    )


def test_cli_sets_a_secret_from_stdin_and_lists_it_without_its_value(tmp_path: Path) -> None:
    made = aop(tmp_path, "secret", "set", "API_KEY", stdin=PLAINTEXT + "\n")
    assert made.returncode == 0, made.stderr
    assert PLAINTEXT not in made.stdout + made.stderr
    again = aop(tmp_path, "secret", "set", "API_KEY", stdin="other")
    assert "version 2" in again.stdout
    listed = aop(tmp_path, "secret", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    assert '"name": "API_KEY"' in listed.stdout
    assert '"version": 2' in listed.stdout
    assert PLAINTEXT not in listed.stdout
    key_file = tmp_path / "data" / "secret.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    deleted = aop(tmp_path, "secret", "delete", "API_KEY")
    assert deleted.returncode == 0, deleted.stderr
    missing = aop(tmp_path, "secret", "delete", "API_KEY")
    assert missing.returncode == 1
    assert "secret 'API_KEY' does not exist" in missing.stderr


def test_cli_refuses_a_bad_name_before_reading_a_value(tmp_path: Path) -> None:
    refused = aop(tmp_path, "secret", "set", "9-bad", stdin=PLAINTEXT)
    assert refused.returncode == 2
    assert "field 'name'" in refused.stderr


# --- MCP ------------------------------------------------------------------------------------


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[Client]:
    async with hub_on(tmp_path) as hub:
        door: McpDoor = create_mcp()
        async with door.attached(hub), Client(door.server) as connected:
            yield connected


async def test_mcp_admin_sets_lists_and_deletes_and_no_tool_returns_a_value(
    client: Client,
) -> None:
    set_ = await call(client, "secret_set", name="API_KEY", value=PLAINTEXT)
    assert set_["version"] == 1
    listed = await call(client, "secret_list")
    assert [s["name"] for s in listed["secrets"]] == ["API_KEY"]
    assert PLAINTEXT not in str(set_) + str(listed)
    assert (await call(client, "secret_delete", name="API_KEY"))["deleted"] is True
    assert "secret_list" in await failing(client, "secret_delete", name="API_KEY")
    assert "field 'name'" in await failing(client, "secret_set", name="no-dash", value="x")


async def test_mcp_operator_is_refused_secrets(tmp_path: Path) -> None:
    async with serving_mcp(tmp_path) as served:
        _, operator = await served.hub.tokens.create(Role.OPERATOR, "ops")
        async with mcp_client(served.url, operator) as as_operator:
            for tool, args in [
                ("secret_set", {"name": "API_KEY", "value": PLAINTEXT}),
                ("secret_list", {}),
                ("secret_delete", {"name": "API_KEY"}),
            ]:
                with anyio.fail_after(WAIT):
                    refused = await as_operator.call_tool(tool, args)
                assert refused.is_error
                assert "role admin" in text(refused)
        assert await served.hub.secrets.list() == []


# --- REST -----------------------------------------------------------------------------------


async def test_rest_admin_only_and_never_returns_a_value(tmp_path: Path) -> None:
    async with serving(tmp_path) as api:
        _, admin = await api.hub.tokens.create(Role.ADMIN, "root")
        async with api.client(admin) as http:
            put = await http.put("/secrets/API_KEY", json={"value": PLAINTEXT})
            assert put.status_code == 200, put.text
            assert put.json()["version"] == 1
            listed = await http.get("/secrets")
            assert [s["name"] for s in listed.json()["items"]] == ["API_KEY"]
            assert PLAINTEXT not in put.text + listed.text
            bad = await http.put("/secrets/bad-name", json={"value": PLAINTEXT})
            assert bad.status_code == 422
            assert (await http.delete("/secrets/API_KEY")).status_code == 204
            assert (await http.delete("/secrets/API_KEY")).status_code == 404
        async with api.client("operator") as http:
            assert (await http.get("/secrets")).status_code == 403
            put = await http.put("/secrets/API_KEY", json={"value": PLAINTEXT})
            assert put.status_code == 403
            assert (await http.delete("/secrets/API_KEY")).status_code == 403
        assert await api.hub.secrets.list() == []
