"""Both shipped stores pass the one Store contract."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from store_contract import StoreContract

from aop_mcp.ports.store import Store
from aop_mcp.store import MemoryStore, SqliteStore


@pytest.fixture(params=["memory", "sqlite"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    opened: Store = MemoryStore() if request.param == "memory" else SqliteStore(tmp_path / "aop.db")
    await opened.open()
    yield opened
    await opened.close()


class TestStoreContract(StoreContract):
    pass
