"""Store adapters: `MemoryStore` (dicts) and `SqliteStore` (aiosqlite, WAL, group commit)."""

from __future__ import annotations

from pathlib import Path

from aop_mcp.ports.store import Store
from aop_mcp.store.memory import MemoryStore
from aop_mcp.store.sqlite import SqliteStore

__all__ = ["MemoryStore", "SqliteStore", "Store", "open_store"]


def open_store(path: str | Path | None) -> Store:
    """The store for `path`: ":memory:" or None gives a MemoryStore, else a SqliteStore.

    The store is not opened yet: call `await store.open()` (and `close()` when done).
    """
    if path is None or str(path) == ":memory:":
        return MemoryStore()
    return SqliteStore(path)
