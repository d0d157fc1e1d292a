"""The `design_workflow` prompt: what a model needs to write a valid workflow document."""

from __future__ import annotations

import json
from functools import cache
from typing import Annotated

from mcp.server.mcpserver import MCPServer
from pydantic import Field

#: A complete, valid document (a test checks it parses): fan-out, join, retry, fallback, inputs.
EXAMPLE = """\
name: release-notes
description: Collect recent commits, summarise them two ways, then join the results.
inputs:
  repo: {type: string, description: path of a git repository}
  count: {type: integer, default: 20, description: how many commits to read}
tasks:
  - id: commits
    run:
      executor: local
      command: [git, -C, "{{ inputs.repo }}", log, --oneline, -n, "{{ inputs.count }}"]
    retry: {max_attempts: 3, backoff: {initial: 1s, max: 10s}, retry_on: [exit_code]}
    timeout: 30s

  - id: authors
    needs: [commits]
    run:
      executor: local
      shell: git -C "$REPO" log --format=%an -n "$COUNT" | sort -u
      env: {REPO: "{{ inputs.repo }}", COUNT: "{{ inputs.count }}"}
    fallback: authors-unknown

  - id: authors-unknown
    run: {executor: local, command: [echo, "(authors unavailable)"]}

  - id: count-lines
    needs: [commits]
    run:
      executor: local
      shell: printf '%s\\n' "$LOG" | wc -l
      env: {LOG: "{{ tasks.commits.output }}"}

  - id: notes
    needs: [authors, count-lines]
    run:
      executor: local
      command:
        - echo
        - "{{ tasks['count-lines'].output | trim }} commits by {{ tasks.authors.output | trim }}"
"""

RULES = """\
Rules of a workflow document:
- `name`: letters, digits, _ . - ; `tasks`: a non-empty list; task `id`s are unique.
- Each task's `run` picks an executor: `local` (`command`: a list of arguments run without
  a shell, OR `shell`: a /bin/sh script; optional `env`, `workdir`), `python`
  (`function: "module:attr"`, `args`: keyword arguments) or `dagger` (`image`, `command`:
  run in a container; optional `env`, `secrets`: names of hub secrets given as variables,
  `workdir`, `files: {path: contents}`, `cache_volumes: {name: path}`).
- `needs` lists the ids of tasks that must succeed first; there must be no cycle.
- `retry: {max_attempts, backoff: {initial, max, multiplier, jitter}, retry_on}`;
  durations are seconds or strings like 250ms, 30s, 5m.
- `fallback` names a task that runs only if this one fails for good, and stands in for it;
  a fallback must not be in the needs chain of its primary.
- `when` is an expression (e.g. `inputs.shout`): the task is skipped when it is false.
- Templates `{{ inputs.NAME }}` and `{{ tasks.ID.output }}` (an upstream task's output; a
  task can only read tasks it needs, directly or not). Pass them to shells through `env`,
  never pasted into the script. `{{ tasks.ID.output.json.key }}` reads JSON output.
- `inputs` declares run inputs: `{type: string|integer|number|boolean|object|array,
  default, description}`; an input without a default is required.
"""


@cache
def document_schema() -> str:
    """The JSON schema of a workflow document (built once: it does not change)."""
    # Imported on first use: the document model pulls in Jinja2 and YAML, which `aop stdio`
    # does not need before its first tool call.
    from aop_mcp.workflow import WorkflowDocument

    return json.dumps(WorkflowDocument.model_json_schema(), indent=1)


def design_text(goal: str) -> str:
    """The prompt's one message."""
    return (
        f"Design an aop-mcp workflow for this goal:\n\n{goal}\n\n"
        "Write the workflow document as YAML. Then call the tool `workflow_validate` with it, "
        "fix every problem it reports (each names the task and the field), and call it again "
        "until it says valid. Only then call `workflow_define`, and `run_start` to run it.\n\n"
        f"{RULES}\n"
        f"A complete, valid example:\n\n```yaml\n{EXAMPLE}```\n\n"
        f"The JSON schema of the document:\n\n```json\n{document_schema()}\n```\n"
    )


def register(server: MCPServer) -> None:
    """Add the prompts to `server`."""

    @server.prompt(title="Design a workflow")
    def design_workflow(
        goal: Annotated[str, Field(description="what the workflow should achieve, in words")],
    ) -> str:
        """Instructions, the document's JSON schema and a complete example for writing a
        valid aop-mcp workflow that achieves `goal`."""
        return design_text(goal)
