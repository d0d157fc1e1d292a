"""The SQL of the SQLite store, read once from the `.sql` files shipped in the package.

`QUERIES` maps each `-- name: <name>` of `sql/queries.sql` to its statement;
`migrations()` lists the numbered files of `sql/migrations/` in order.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources

_SQL = resources.files("aop_mcp.store") / "sql"
_HEADER = re.compile(r"^-- name: (\w+)\s*$", re.MULTILINE)
_MIGRATION = re.compile(r"^(\d{4})_(\w+)\.sql$")


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    script: str


def parse_queries(text: str) -> dict[str, str]:
    """Split a file of `-- name:` sections into {name: statement}."""
    parts = _HEADER.split(text)
    queries: dict[str, str] = {}
    for name, body in zip(parts[1::2], parts[2::2], strict=True):
        if name in queries:
            raise ValueError(f"query {name!r} is defined twice in queries.sql")
        queries[name] = body.strip()
    return queries


def migrations() -> list[Migration]:
    """Every migration file, by version."""
    found = []
    for entry in (_SQL / "migrations").iterdir():
        match = _MIGRATION.match(entry.name)
        if match:
            found.append(Migration(int(match[1]), match[2], entry.read_text(encoding="utf-8")))
    return sorted(found, key=lambda m: m.version)


QUERIES: dict[str, str] = parse_queries((_SQL / "queries.sql").read_text(encoding="utf-8"))
