"""The one error tree of aop-mcp.

Every error carries the data a door needs to explain it (which workflow, run, task or field)
and a message that tells the caller how to fix the call. Doors map these once each: to an MCP
tool error, to an HTTP problem+json response, to a CLI line with an exit code.
"""

from __future__ import annotations

from dataclasses import dataclass


class AopError(Exception):
    """Base of every error aop-mcp raises on purpose."""

    #: HTTP status the REST door answers with; CLI exit code is 1 unless `usage` is set.
    status: int = 500
    #: True when the caller's input is at fault (CLI exits 2).
    usage: bool = False

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class NotFound(AopError):
    """A named thing does not exist."""

    status = 404


class WorkflowNotFound(NotFound):
    def __init__(self, name: str, version: int | None = None) -> None:
        what = f"workflow {name!r}" if version is None else f"workflow {name!r} version {version}"
        super().__init__(f"{what} does not exist; define it first or list workflows to see names")
        self.name = name
        self.version = version


class RunNotFound(NotFound):
    def __init__(self, run_id: str) -> None:
        super().__init__(f"run {run_id!r} does not exist; list runs to see their ids")
        self.run_id = run_id


class TaskRunNotFound(NotFound):
    def __init__(self, run_id: str, task_id: str) -> None:
        super().__init__(f"run {run_id!r} has no task {task_id!r}")
        self.run_id = run_id
        self.task_id = task_id


class AttemptNotFound(NotFound):
    def __init__(self, run_id: str, task_id: str, number: int | None, attempts: int) -> None:
        made = (
            "has not started an attempt yet" if attempts == 0 else f"has attempts 1 to {attempts}"
        )
        wanted = "" if number is None else f"; no attempt {number}"
        super().__init__(f"task {task_id!r} of run {run_id!r} {made}{wanted}")
        self.run_id = run_id
        self.task_id = task_id
        self.number = number


class DeadLetterNotFound(NotFound):
    def __init__(self, dead_letter_id: str) -> None:
        super().__init__(
            f"dead letter {dead_letter_id!r} does not exist; list the dead-letter queue to see ids"
        )
        self.dead_letter_id = dead_letter_id


class TokenNotFound(NotFound):
    def __init__(self, token_id: str) -> None:
        super().__init__(f"token {token_id!r} does not exist; list tokens to see their ids")
        self.token_id = token_id


class SecretNotFound(NotFound):
    def __init__(self, name: str) -> None:
        super().__init__(f"secret {name!r} does not exist; list secrets to see their names")
        self.name = name


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a workflow document or with run inputs."""

    field: str
    message: str
    task: str | None = None

    def __str__(self) -> str:
        where = (
            f"task {self.task!r}, field {self.field!r}" if self.task else f"field {self.field!r}"
        )
        return f"{where}: {self.message}"


class InvalidWorkflow(AopError):
    """The workflow document is not valid; `problems` lists every fault found."""

    status = 422
    usage = True

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = list(problems)
        first = problems[0] if problems else Problem("document", "invalid")
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        super().__init__(f"invalid workflow: {first}{more}")

    @property
    def field(self) -> str:
        return self.problems[0].field

    @property
    def task(self) -> str | None:
        return self.problems[0].task


class InvalidInputs(AopError):
    """Run inputs do not match the workflow's declared inputs."""

    status = 422
    usage = True

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = list(problems)
        super().__init__("invalid inputs: " + "; ".join(str(p) for p in problems))


class AgentNotFound(NotFound):
    def __init__(self, name: str) -> None:
        super().__init__(f"agent {name!r} does not exist; list agents to see their names")
        self.name = name


class InvalidAgent(AopError):
    """An agent spec is not valid; `problems` lists every fault found, each naming its field."""

    status = 422
    usage = True

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = list(problems)
        first = problems[0] if problems else Problem("spec", "invalid")
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        super().__init__(f"invalid agent: {first}{more}")

    @property
    def field(self) -> str:
        return self.problems[0].field


class Conflict(AopError):
    """The request is valid but the thing is in a state that does not allow it."""

    status = 409


class RunFinished(Conflict):
    def __init__(self, run_id: str, status: str, action: str) -> None:
        super().__init__(f"run {run_id!r} is already {status}; cannot {action} it")
        self.run_id = run_id


class RunNotFinished(Conflict):
    def __init__(self, run_id: str, status: str, action: str) -> None:
        super().__init__(
            f"run {run_id!r} is still {status}; wait for it to finish (or cancel it) "
            f"before you {action} it"
        )
        self.run_id = run_id


class NothingToRetry(Conflict):
    def __init__(self, run_id: str) -> None:
        super().__init__(f"run {run_id!r} succeeded: it has no failed or cancelled task to retry")
        self.run_id = run_id


class RunOwnedElsewhere(Conflict):
    def __init__(self, run_id: str, owner: str) -> None:
        super().__init__(
            f"run {run_id!r} is being driven by another engine ({owner}); "
            "ask that process, or wait for its lease to expire"
        )
        self.run_id = run_id
        self.owner = owner


class DeadLetterReplayed(Conflict):
    def __init__(self, dead_letter_id: str) -> None:
        super().__init__(f"dead letter {dead_letter_id!r} was already replayed")
        self.dead_letter_id = dead_letter_id


class AgentExists(Conflict):
    def __init__(self, name: str) -> None:
        super().__init__(
            f"agent {name!r} is already registered; update it instead, or deregister it first"
        )
        self.name = name


class InvalidSecret(AopError):
    """A secret's name or value is not valid; `field` names which."""

    status = 422
    usage = True

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"invalid secret: field {field!r}: {message}")
        self.field = field


class SecretKeyMismatch(AopError):
    """A stored secret cannot be decrypted: the hub's secret key is not the one it was set with."""

    status = 500

    def __init__(self, name: str) -> None:
        super().__init__(
            f"secret {name!r} was encrypted with another secret key; use the key it was set "
            "with (AOP_SECRET_KEY or the secret key file), or set the secret again"
        )
        self.name = name


class PolicyRefused(AopError):
    """The server's policy forbids what was asked; the message says who can change that."""

    status = 403

    def __init__(self, message: str, *, task_id: str | None = None) -> None:
        super().__init__(message)
        self.task_id = task_id


class StoreError(AopError):
    """The store could not do what was asked (disk, lock, corruption)."""

    status = 503


class InvalidQuery(AopError):
    """A query's arguments ask for something no store can answer; `field` names which."""

    status = 422
    usage = True

    def __init__(self, field: str, value: object, why: str) -> None:
        super().__init__(f"invalid query: {field}={value!r}: {why}")
        self.field = field
        self.value = value


class EngineStopped(AopError):
    """The engine is not running (not started yet, or shutting down)."""

    status = 503

    def __init__(self) -> None:
        super().__init__("the engine is not running (it is starting or shutting down); retry")


class ConfigError(AopError):
    """A configuration value is wrong; names the setting and the bad value."""

    usage = True

    def __init__(self, key: str, value: object, why: str) -> None:
        super().__init__(f"configuration {key}={value!r} is invalid: {why}")
        self.key = key
