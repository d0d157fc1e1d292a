"""Defining, validating and reading workflows."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aop_mcp.engine.clock import Clock
from aop_mcp.models import WorkflowVersion
from aop_mcp.ports.store import Store
from aop_mcp.workflow import WorkflowDocument, parse_workflow

Source = str | bytes | dict[str, Any] | Path


class WorkflowService:
    def __init__(self, store: Store, clock: Clock) -> None:
        self._store = store
        self._clock = clock

    def validate(self, source: Source) -> WorkflowDocument:
        """Parse and check a document (YAML/JSON text, a dict or a file); raises InvalidWorkflow."""
        return parse_workflow(source)

    async def define(self, source: Source | WorkflowDocument) -> tuple[WorkflowVersion, bool]:
        """Store a document by its name; a changed document becomes the next version.

        `source` may be one `validate` already parsed. Returns the version and whether it is
        new (False: identical to the latest).
        """
        document = source if isinstance(source, WorkflowDocument) else parse_workflow(source)
        return await self._store.save_workflow(
            document.name, document.canonical(), document.digest(), self._clock.now()
        )

    async def get(self, name: str, version: int | None = None) -> WorkflowVersion:
        """A stored version (the latest by default); raises WorkflowNotFound."""
        return await self._store.get_workflow(name, version)

    async def list(self) -> list[WorkflowVersion]:
        """The latest version of every workflow."""
        return await self._store.list_workflows()
