"""Agent specs from YAML files: one AgentSpec per file, or a list of them.

The `agents/` folder also holds Fast-Agent's own configuration; those files are skipped.
Every file is read and checked before anything is registered, so a bad file changes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from aop_mcp.agents.spec import AgentSpec, parse_spec
from aop_mcp.errors import InvalidAgent, Problem

#: Fast-Agent's configuration files: they live beside the agent specs but are not specs.
#: Fast-Agent's own files (its config and secrets, old and new names) can share the folder.
SKIPPED = frozenset(
    {
        "fast-agent.yaml",
        "fast-agent.config.yaml",
        "fast-agent.secrets.yaml",
        "fastagent.config.yaml",
        "fastagent.secrets.yaml",
        "README.md",
    }
)


def spec_files(directory: Path) -> list[Path]:
    """The spec files of `directory`, by name."""
    return sorted(
        path
        for pattern in ("*.yaml", "*.yml")
        for path in directory.glob(pattern)
        if path.is_file() and path.name not in SKIPPED
    )


def read_specs(directory: Path) -> list[AgentSpec]:
    """Every spec in the files of `directory`; raises InvalidAgent naming the file and field."""
    specs: list[AgentSpec] = []
    problems: list[Problem] = []
    for path in spec_files(directory):
        try:
            specs.extend(_read_file(path))
        except InvalidAgent as err:
            problems.extend(_in_file(path, problem) for problem in err.problems)
    if problems:
        raise InvalidAgent(problems)
    return specs


def _read_file(path: Path) -> list[AgentSpec]:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise InvalidAgent([Problem("file", f"cannot read it: {exc}")]) from exc
    items: list[Any] = raw if isinstance(raw, list) else [raw]
    specs = []
    for index, item in enumerate(items):
        if not isinstance(item, Mapping):
            where = f"[{index}]" if isinstance(raw, list) else "file"
            raise InvalidAgent([Problem(where, "expected an agent spec (a mapping)")])
        specs.append(parse_spec(item))
    return specs


def _in_file(path: Path, problem: Problem) -> Problem:
    return Problem(problem.field, f"{problem.message} (in {path})")
