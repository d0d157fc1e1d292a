"""The workflow document: the pydantic models a user's YAML, JSON or tool arguments become.

Every model is frozen and forbids unknown fields, so a typo is an error rather than a silently
ignored key. Validators raise `PydanticCustomError` built by `fail`, whose context carries the
sub-field at fault; `load.parse_workflow` turns those into `Problem`s that name task and field.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import re
from typing import Annotated, Any, Literal, get_args

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    PrivateAttr,
    Tag,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from aop_mcp.models import FailureKind

#: The error type of every rule written here (as opposed to pydantic's own checks).
ERROR_TYPE = "workflow"


def fail(message: str, field: str | None = None) -> PydanticCustomError:
    """An error with a ready-made message; `field` names the sub-field at fault, if any."""
    # The message travels in the context so braces in user values are never formatted.
    return PydanticCustomError(ERROR_TYPE, "{message}", {"message": message, "field": field})


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- durations ------------------------------------------------------------------------------

_NUM = r"(\d+(?:\.\d*)?|\.\d+)"
_DURATION = re.compile(rf"(?:{_NUM}h)?(?:{_NUM}m(?!s))?(?:{_NUM}s)?(?:{_NUM}ms)?")
_UNIT_SECONDS = (3600.0, 60.0, 1.0, 0.001)


def parse_duration(value: Any) -> float:
    """Seconds from a number or a string like `250ms`, `30s`, `5m`, `1h30m`; must be > 0."""
    if isinstance(value, bool):
        raise fail(f"invalid duration {value!r}: use a number of seconds or a string like 30s")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        seconds = _seconds_from_text(value)
    else:
        raise fail(f"invalid duration {value!r}: use a number of seconds or a string like 30s")
    if not math.isfinite(seconds) or seconds <= 0:
        raise fail(f"duration must be more than 0 seconds, got {value!r}")
    return seconds


def _seconds_from_text(text: str) -> float:
    stripped = text.strip()
    try:
        return float(stripped)  # "30" means 30 seconds, as a bare number does
    except ValueError:
        pass
    match = _DURATION.fullmatch(stripped)
    if not stripped or match is None:
        raise fail(
            f"invalid duration {text!r}: use a number of seconds or a string like 30s, 5m, 1h"
        )
    parts = zip(match.groups(), _UNIT_SECONDS, strict=True)
    return sum(float(amount) * unit for amount, unit in parts if amount is not None)


Duration = Annotated[
    float,
    BeforeValidator(parse_duration),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "number", "exclusiveMinimum": 0},
                {"type": "string", "pattern": r"^(\d+(\.\d*)?(h|m|s|ms))+$"},
            ],
            "description": "seconds, or a string like 250ms, 30s, 5m, 1h30m",
        }
    ),
]


def _pattern(pattern: str, what: str, hint: str) -> Any:
    """A str type checked against `pattern` with a message a person can act on."""
    compiled = re.compile(pattern)

    def check(value: str) -> str:
        if not compiled.fullmatch(value):
            raise fail(f"invalid {what} {value!r}: {hint}")
        return value

    return Annotated[
        str, AfterValidator(check), WithJsonSchema({"type": "string", "pattern": pattern})
    ]


TaskId = _pattern(
    r"^[A-Za-z_][A-Za-z0-9_-]{0,63}$",
    "task id",
    "use up to 64 letters, digits, _ or -, starting with a letter or _",
)
WorkflowName = _pattern(
    r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$",
    "workflow name",
    "use up to 128 letters, digits, _, . or -, starting with a letter or digit",
)
_FUNCTION = r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$"
FunctionRef = _pattern(
    _FUNCTION, "function", "write it as 'module.path:attr.path', e.g. 'json:dumps'"
)
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


# --- inputs ---------------------------------------------------------------------------------

InputType = Literal["string", "integer", "number", "boolean", "object", "array"]


def value_matches(type_: InputType, value: Any) -> bool:
    """True when `value` (already decoded, not a CLI string) is of the input type."""
    if type_ == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if type_ == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    python_type = {"string": str, "boolean": bool, "object": dict, "array": list}[type_]
    return isinstance(value, python_type)


class InputSpec(_Frozen):
    """A declared run input. One with no default is required unless `required` is false."""

    type: InputType = "string"
    default: Any = None
    description: str = ""
    required: bool | None = None

    @model_validator(mode="after")
    def _default_fits(self) -> InputSpec:
        if self.default is None:
            return self
        if not value_matches(self.type, self.default):
            raise fail(f"default {self.default!r} is not of type {self.type}", "default")
        if self.required:
            raise fail("an input with a default is never missing; drop required", "required")
        return self

    @property
    def is_required(self) -> bool:
        """Whether a run must be given this input."""
        return self.required if self.required is not None else self.default is None


# --- run kinds ------------------------------------------------------------------------------


_SIZE = re.compile(r"(\d+)\s*([KMG]?)B?", re.IGNORECASE)
_SIZE_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3}


def parse_memory_size(value: Any) -> int:
    """Bytes from a whole number of bytes or a string like `512M`, `64K`, `2G`; must be > 0."""
    hint = "use a number of bytes or a size like 512M (units K, M, G)"
    if isinstance(value, int) and not isinstance(value, bool):
        size = value
    elif isinstance(value, str) and (match := _SIZE.fullmatch(value.strip())):
        size = int(match[1]) * _SIZE_UNITS[match[2].upper()]
    else:
        raise fail(f"invalid memory size {value!r}: {hint}")
    if size <= 0:
        raise fail(f"memory size must be more than 0 bytes, got {value!r}")
    return size


MemorySize = Annotated[
    int,
    BeforeValidator(parse_memory_size),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "integer", "exclusiveMinimum": 0},
                {"type": "string", "pattern": r"^\d+[KMGkmg]?[Bb]?$"},
            ],
            "description": "bytes, or a size like 64K, 512M, 2G",
        }
    ),
]


class Limits(_Frozen):
    """Resource limits of a local task's process: its address space and its CPU time."""

    memory: MemorySize | None = None
    cpu_seconds: int | None = Field(default=None, ge=1)


class LocalRun(_Frozen):
    """A subprocess on the engine's host: `command` (no shell) or `shell` (a /bin/sh script).

    In the sandbox it has no network unless `network` is true; `limits` cap its memory and
    CPU time."""

    executor: Literal["local"]
    command: list[str] | None = None
    shell: str | None = None
    env: dict[str, str] = {}
    workdir: str | None = None
    network: bool = False
    limits: Limits | None = None

    @model_validator(mode="after")
    def _command_or_shell(self) -> LocalRun:
        if self.command is None and self.shell is None:
            raise fail(
                "give command (a list of arguments, run without a shell) or shell "
                "(a script run by /bin/sh)",
                "command",
            )
        if self.command is not None and self.shell is not None:
            raise fail("give command or shell, not both", "shell")
        if self.command is not None and not self.command:
            raise fail("command must name at least the program to run", "command")
        return self


class PythonRun(_Frozen):
    """A Python callable `module.path:attr.path`, called with `args` as keyword arguments."""

    executor: Literal["python"]
    function: FunctionRef
    args: dict[str, Any] = {}


class AgentRun(_Frozen):
    """A message (`input`) to an agent the Agent Manager picks: any healthy agent with the
    `capability`, or the one named `agent`. `output: json` requires a JSON reply."""

    executor: Literal["agent"]
    capability: str | None = Field(default=None, min_length=1)
    agent: str | None = Field(default=None, min_length=1)
    input: str
    output: Literal["text", "json"] = "text"

    @model_validator(mode="after")
    def _capability_or_agent(self) -> AgentRun:
        if self.capability is None and self.agent is None:
            raise fail(
                "give capability (any healthy agent that has it) or agent (one agent by name)",
                "capability",
            )
        if self.capability is not None and self.agent is not None:
            raise fail("give capability or agent, not both", "agent")
        return self


SecretName = _pattern(
    r"^[A-Za-z_][A-Za-z0-9_]{0,63}$",
    "secret name",
    "secrets are named like environment variables: letters, digits and _, up to 64",
)
VolumeName = _pattern(
    r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$",
    "cache volume name",
    "use up to 128 letters, digits, _, . or -, starting with a letter or digit",
)


class DaggerRun(_Frozen):
    """`command` (no shell) in a container of `image`, run by a Dagger engine.

    `secrets` names hub secrets the command gets as environment variables of the same names;
    `files` (container path: contents) are written before it starts; `cache_volumes`
    (volume name: mount path) keep their contents between runs on the same engine.
    """

    executor: Literal["dagger"]
    image: str = Field(min_length=1)
    command: list[str]
    env: dict[str, str] = {}
    secrets: list[SecretName] = []
    workdir: str | None = None
    files: dict[str, str] = {}
    cache_volumes: dict[VolumeName, str] = {}

    @model_validator(mode="after")
    def _consistent(self) -> DaggerRun:
        if not self.command:
            raise fail("command must name at least the program to run", "command")
        if self.workdir is not None and not self.workdir.startswith("/"):
            raise fail(f"workdir {self.workdir!r} must be an absolute path, like /src", "workdir")
        for volume, path in self.cache_volumes.items():
            if not path.startswith("/"):
                raise fail(
                    f"cache volume {volume!r} must be mounted at an absolute path, not {path!r}",
                    "cache_volumes",
                )
        self._check_secrets()
        return self

    def _check_secrets(self) -> None:
        seen: set[str] = set()
        for name in self.secrets:
            if name in seen:
                raise fail(f"secret {name!r} is listed twice", "secrets")
            if name in self.env:
                raise fail(
                    f"{name!r} is both in env and in secrets; a secret is given to the command "
                    "as the variable of its name, so drop it from env",
                    "secrets",
                )
            seen.add(name)


# A new run kind is one more member of this union; the executor names derive from it.
RunSpec = Annotated[LocalRun | PythonRun | AgentRun | DaggerRun, Field(discriminator="executor")]

RUN_KINDS: dict[str, type[BaseModel]] = {
    get_args(kind.model_fields["executor"].annotation)[0]: kind
    for kind in get_args(get_args(RunSpec)[0])
}


# --- retries --------------------------------------------------------------------------------

_SELECTABLE = (
    FailureKind.EXIT_CODE,
    FailureKind.TIMEOUT,
    FailureKind.ERROR,
    FailureKind.AGENT_ERROR,
    FailureKind.UNAVAILABLE,
    FailureKind.INVALID_OUTPUT,
)
_CHOICES = ", ".join(_SELECTABLE)
_NOT_SELECTABLE = {
    FailureKind.INTERRUPTED: "the engine always retries attempts lost to an interruption",
    FailureKind.TEMPLATE: "a template that cannot be rendered is never retried",
    FailureKind.MISCONFIGURED: (
        "what the server lacks (a Dagger engine, a secret) does not appear by retrying; "
        "replay the dead letter once it is fixed"
    ),
}


def _selectable_kind(value: Any) -> Any:
    if isinstance(value, str) and value in _NOT_SELECTABLE:
        why = _NOT_SELECTABLE[FailureKind(value)]
        raise fail(f"{value!r} cannot be chosen in retry_on: {why}; choose from {_CHOICES}")
    if not isinstance(value, str) or value not in _SELECTABLE:
        raise fail(f"unknown failure kind {value!r}; choose from {_CHOICES}")
    return value


class Backoff(_Frozen):
    """Exponential backoff between attempts: `initial * multiplier**n`, capped at `max`."""

    initial: Duration = 1.0
    max: Duration = 60.0
    multiplier: float = Field(default=2.0, ge=1)
    jitter: float = Field(default=0.1, ge=0, le=1)

    @model_validator(mode="after")
    def _max_not_below_initial(self) -> Backoff:
        if self.max < self.initial:
            raise fail(f"max ({self.max}s) is below initial ({self.initial}s)", "max")
        return self


class RetryPolicy(_Frozen):
    """How many attempts a task gets, how long to wait between them, which failures count."""

    max_attempts: int = Field(default=1, ge=1)
    backoff: Backoff = Backoff()
    retry_on: list[Annotated[FailureKind, BeforeValidator(_selectable_kind)]] = list(_SELECTABLE)

    def delay(self, attempt: int, rng: random.Random) -> float:
        """Seconds to wait after failed attempt number `attempt` (1-based), jitter included."""
        if attempt < 1:
            raise ValueError(f"attempt numbers start at 1, got {attempt}")
        backoff = self.backoff
        try:
            base = min(backoff.max, backoff.initial * backoff.multiplier ** (attempt - 1))
        except OverflowError:  # a huge attempt number: the cap applies anyway
            base = backoff.max
        return base * (1 + rng.uniform(0, backoff.jitter))

    def retries(self, kind: FailureKind) -> bool:
        """Whether a failure of this kind is retried (attempts permitting)."""
        return kind in self.retry_on


# --- result cache ---------------------------------------------------------------------------


class CachePolicy(_Frozen):
    """`cache: {ttl: 1h}`: reuse a stored result younger than `ttl` (no ttl: forever)."""

    ttl: Duration | None = None


def _cache_setting(value: Any) -> Any:
    """`cache` is true, false or a mapping such as {ttl: 1h}; anything else is named."""
    if isinstance(value, bool | dict | CachePolicy):
        return value
    raise fail(f"invalid cache {value!r}: write true, false or a mapping such as {{ttl: 1h}}")


def _cache_kind(value: Any) -> str:
    return "flag" if isinstance(value, bool) else "policy"


# A flag or a policy, told apart up front so an error speaks of one of them, not both.
CacheSetting = Annotated[
    Annotated[bool, Tag("flag")] | Annotated[CachePolicy, Tag("policy")],
    Discriminator(_cache_kind),
    BeforeValidator(_cache_setting),
]


# --- tasks and the document -----------------------------------------------------------------


def _bare_expression(value: str | None) -> str | None:
    """`{{ expr }}` and `expr` mean the same `when`; store the bare expression."""
    if value is None:
        return None
    text = value.strip()
    inner = text[2:-2]
    if text.startswith("{{") and text.endswith("}}") and "{{" not in inner and "}}" not in inner:
        text = inner.strip()
    if not text:
        raise fail("when is empty; write an expression such as inputs.env == 'prod'")
    return text


class TaskSpec(_Frozen):
    """One task of a workflow: what runs (`run`), after what (`needs`), and how it recovers."""

    id: TaskId
    description: str = ""
    needs: list[str] = []
    run: RunSpec
    retry: RetryPolicy = RetryPolicy()
    timeout: Duration | None = None
    priority: int = 0
    cache: CacheSetting = False
    fallback: str | None = None
    when: Annotated[str | None, AfterValidator(_bare_expression)] = None


class WorkflowDocument(_Frozen):
    """A named workflow: its inputs and its tasks. `canonical()` is the stored form."""

    name: WorkflowName
    description: str = ""
    inputs: dict[str, InputSpec] = {}
    max_parallel: int | None = Field(default=None, ge=1)
    tasks: list[TaskSpec] = Field(min_length=1)

    _by_id: dict[str, TaskSpec] = PrivateAttr(default_factory=dict)

    @field_validator("inputs")
    @classmethod
    def _input_names(cls, inputs: dict[str, InputSpec]) -> dict[str, InputSpec]:
        for name in inputs:
            if not _IDENTIFIER.fullmatch(name):
                raise fail(
                    f"input name {name!r} is not an identifier: use letters, digits and _, "
                    "starting with a letter or _"
                )
        return inputs

    def model_post_init(self, context: Any, /) -> None:
        """Index tasks by id (the first of a duplicated id wins; check_graph reports it)."""
        for task in reversed(self.tasks):
            self._by_id[task.id] = task

    def task(self, task_id: str) -> TaskSpec:
        """The task with this id; KeyError if the document has none."""
        return self._by_id[task_id]

    def canonical(self) -> dict[str, Any]:
        """The JSON form without defaults: what the store keeps and what `digest` hashes."""
        return self.model_dump(mode="json", exclude_defaults=True)

    def digest(self) -> str:
        """sha256 of the canonical form; formatting and stated defaults do not change it."""
        text = json.dumps(self.canonical(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()
