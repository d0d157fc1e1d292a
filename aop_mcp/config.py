"""Configuration, read once from `AOP_*` environment variables and passed down.

Nothing else in the package reads `os.environ`. Every setting has a sane default so
`aop serve` runs with no configuration at all.
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from aop_mcp.errors import ConfigError
from aop_mcp.security.sandbox import SandboxMode

APP_NAME = "aop-mcp"


def default_data_dir(environ: Mapping[str, str]) -> Path:
    """The user's data directory (XDG on Linux), without importing platformdirs on start-up."""
    base = environ.get("XDG_DATA_HOME") or str(Path(environ.get("HOME", "~")) / ".local/share")
    return Path(base).expanduser() / APP_NAME


@dataclass(frozen=True, slots=True)
class Settings:
    data_dir: Path
    db: Path | None  # None: the in-memory store (tests, experiments)
    host: str = "127.0.0.1"
    port: int = 8765
    max_concurrency: int = 32  # attempts running at once in this engine, all runs together
    lease_seconds: float = 30.0  # how long a crashed engine's runs stay locked on other hosts
    output_cap: int = 1_048_576  # bytes kept of each of stdout and stderr per attempt
    sandbox: SandboxMode = "auto"  # run `local` tasks under bubblewrap: auto, true, false
    allow_unsandboxed: bool = False  # MCP/HTTP may define local tasks with no sandbox
    path: str = "/usr/local/bin:/usr/bin:/bin"  # PATH given to `local` tasks
    agents_dir: Path | None = None  # agents registered from its *.yaml files at start
    fast_agent_config: Path | None = None  # the fast-agent.yaml `fast-agent` agents use
    # An admin bearer token the operator chose (AOP_TOKEN); a secret, so never in a repr.
    token: str | None = field(default=None, repr=False)
    # The Fernet key secrets are encrypted with (AOP_SECRET_KEY); else the key file's.
    secret_key: str | None = field(default=None, repr=False)
    secret_key_file: Path | None = None  # None: secret.key in the data directory
    # Where the Dagger executor finds an engine (DAGGER_VARIABLES), and all the `dagger`
    # CLI it starts is given (DAGGER_CLI_VARIABLES too); it holds a session token, so never
    # in a repr.
    dagger_env: Mapping[str, str] = field(default_factory=dict, repr=False)

    @property
    def secret_key_path(self) -> Path:
        """Where the secret key is kept when AOP_SECRET_KEY is not set."""
        return self.secret_key_file or self.data_dir / "secret.key"

    @property
    def work_root(self) -> Path:
        """Where per-attempt working directories are made."""
        return self.data_dir / "work"

    def with_db(self, db: str | Path | None) -> Settings:
        """A copy using another database (`--db`); ':memory:' selects the in-memory store."""
        if db is None:
            return self
        return replace(self, db=None if str(db) == ":memory:" else Path(db).expanduser())


def _int(key: str, raw: str, minimum: int) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(key, raw, "expected a whole number") from None
    if value < minimum:
        raise ConfigError(key, raw, f"must be at least {minimum}")
    return value


def _float(key: str, raw: str, minimum: float) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(key, raw, "expected a number of seconds") from None
    if value < minimum:
        raise ConfigError(key, raw, f"must be at least {minimum}")
    return value


def _directory(key: str, raw: str) -> Path | None:
    if not raw:
        return None
    path = Path(raw).expanduser()
    if not path.is_dir():
        raise ConfigError(key, raw, "not a directory")
    return path


def _file(key: str, raw: str) -> Path | None:
    if not raw:
        return None
    path = Path(raw).expanduser()
    if not path.is_file():
        raise ConfigError(key, raw, "no such file")
    return path


def _bool(key: str, raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off", ""}:
        return False
    raise ConfigError(key, raw, "expected true or false")


def _sandbox(key: str, raw: str) -> SandboxMode:
    if raw.strip().lower() == "auto":
        return "auto"
    try:
        return "true" if _bool(key, raw) else "false"
    except ConfigError:
        raise ConfigError(key, raw, "expected auto, true or false") from None


#: Shortest AOP_TOKEN accepted: a chosen token must not be guessable.
MIN_TOKEN_LENGTH = 16


def _token(key: str, raw: str) -> str | None:
    secret = raw.strip()
    if secret and len(secret) < MIN_TOKEN_LENGTH:
        # The value is a secret: the error must not repeat it.
        raise ConfigError(
            key,
            "(hidden)",
            f"must be at least {MIN_TOKEN_LENGTH} characters; "
            "`python -c 'import secrets; print(secrets.token_urlsafe(32))'` makes a good one",
        )
    return secret or None


def _secret_key(key: str, raw: str) -> str | None:
    text = raw.strip()
    if not text:
        return None
    try:
        valid = len(base64.urlsafe_b64decode(text.encode("ascii"))) == 32
    except (ValueError, binascii.Error):
        valid = False
    if not valid:
        # The value is a secret: the error must not repeat it.
        raise ConfigError(
            key,
            "(hidden)",
            "expected a Fernet key (32 bytes in URL-safe base64); `python -c 'from "
            "cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'` "
            "makes one",
        )
    return text


_PARSERS: dict[str, tuple[str, Callable[[str, str], Any]]] = {
    "AOP_HOST": ("host", lambda k, v: v),
    "AOP_PORT": ("port", lambda k, v: _int(k, v, 1)),
    "AOP_MAX_CONCURRENCY": ("max_concurrency", lambda k, v: _int(k, v, 1)),
    "AOP_LEASE_SECONDS": ("lease_seconds", lambda k, v: _float(k, v, 1.0)),
    "AOP_OUTPUT_CAP": ("output_cap", lambda k, v: _int(k, v, 1024)),
    "AOP_SANDBOX": ("sandbox", _sandbox),
    "AOP_ALLOW_UNSANDBOXED": ("allow_unsandboxed", _bool),
    "AOP_TASK_PATH": ("path", lambda k, v: v),
    "AOP_AGENTS_DIR": ("agents_dir", lambda k, v: _directory(k, v)),
    "AOP_FAST_AGENT_CONFIG": ("fast_agent_config", lambda k, v: _file(k, v)),
    "AOP_TOKEN": ("token", _token),
    "AOP_SECRET_KEY": ("secret_key", _secret_key),
    "AOP_SECRET_KEY_FILE": ("secret_key_file", lambda k, v: Path(v).expanduser() if v else None),
}


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Settings from the environment (default: `os.environ`); raises ConfigError."""
    env = os.environ if environ is None else environ
    data_dir = Path(env["AOP_DATA_DIR"]).expanduser() if env.get("AOP_DATA_DIR") else None
    data_dir = data_dir or default_data_dir(env)
    values: dict[str, Any] = {}
    for key, (name, parse) in _PARSERS.items():
        if key in env:
            values[name] = parse(key, env[key])
    values["dagger_env"] = dagger_environment(env)
    settings = Settings(data_dir=data_dir, db=data_dir / "aop.db", **values)
    return settings.with_db(env.get("AOP_DB") or None)


#: What the Dagger executor and `aop doctor` read to find an engine without the network:
#: a session (`dagger run`), else a `dagger` CLI on PATH and a runner for it (a remote
#: engine, or the Docker or Podman socket).
DAGGER_VARIABLES = (
    "DAGGER_SESSION_PORT",
    "DAGGER_SESSION_TOKEN",
    "_EXPERIMENTAL_DAGGER_RUNNER_HOST",
    "PATH",
    "DOCKER_HOST",
    "CONTAINER_HOST",
    "XDG_RUNTIME_DIR",
)


#: What `dagger session` needs besides DAGGER_VARIABLES: its home, temporary and state
#: directories, how to reach Docker, registry credentials, certificates and proxies. The CLI
#: is given these and nothing else, so the hub's own AOP_* settings (its token, the secret
#: key) never reach it.
DAGGER_CLI_VARIABLES = (
    "HOME",
    "TMPDIR",
    "XDG_CONFIG_HOME",
    "XDG_CACHE_HOME",
    "XDG_STATE_HOME",
    "DOCKER_CONFIG",
    "DOCKER_CONTEXT",
    "DOCKER_CERT_PATH",
    "DOCKER_TLS_VERIFY",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "no_proxy",
)


def dagger_environment(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The variables of DAGGER_VARIABLES and DAGGER_CLI_VARIABLES that are set (default:
    from `os.environ`)."""
    env = os.environ if environ is None else environ
    return {key: env[key] for key in (*DAGGER_VARIABLES, *DAGGER_CLI_VARIABLES) if env.get(key)}
