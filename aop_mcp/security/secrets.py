"""The hub's secret store: named values, encrypted at rest with Fernet.

A value is encrypted here, before it reaches the store, so the store (and any copy of the
database) only ever holds ciphertext. The key is `AOP_SECRET_KEY`, or the key file (created
on first use, mode 0600). Values leave only through `reveal`, for executors; the doors list,
set and delete secrets but never show a value. cryptography's errors stop in this module.
"""

from __future__ import annotations

import builtins
import hashlib
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from aop_mcp.config import Settings
from aop_mcp.engine.clock import Clock
from aop_mcp.errors import ConfigError, InvalidSecret, SecretKeyMismatch
from aop_mcp.models import Secret
from aop_mcp.ports.store import Store

#: What a secret may be called: an environment variable name, up to 64 characters.
NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
#: The longest value accepted, in characters.
MAX_VALUE = 65_536

KeySource = bytes | Callable[[], bytes]


@dataclass(frozen=True, slots=True)
class SecretInfo:
    """What may be shown of a secret: never its value."""

    name: str
    version: int
    created_at: float
    updated_at: float


def info_of(secret: Secret) -> SecretInfo:
    return SecretInfo(secret.name, secret.version, secret.created_at, secret.updated_at)


def check_name(name: str) -> str:
    """The name, if it is a valid secret name; else InvalidSecret naming the field."""
    if not isinstance(name, str) or not NAME.match(name):
        raise InvalidSecret(
            "name",
            f"{name!r} is not a valid name; use letters, digits and _ (not first a digit), "
            "up to 64 characters, like an environment variable: API_KEY",
        )
    return name


def _check_value(value: str) -> str:
    if not isinstance(value, str):
        raise InvalidSecret("value", "must be text")
    if not value:
        raise InvalidSecret("value", "is empty; give the secret's value")
    if len(value) > MAX_VALUE:
        raise InvalidSecret("value", f"is {len(value)} characters; at most {MAX_VALUE} fit")
    return value


def read_key_file(path: Path) -> bytes:
    """The key in `path`; the file is made first (mode 0600, a new Fernet key) if missing."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        _create_key_file(path)
        return path.read_bytes().strip()
    except OSError as exc:
        raise ConfigError("AOP_SECRET_KEY_FILE", str(path), f"cannot use it: {exc}") from exc


def _create_key_file(path: Path) -> None:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return  # made before, or by another process just now
    with os.fdopen(fd, "wb") as file:
        file.write(Fernet.generate_key() + b"\n")


def settings_key(settings: Settings) -> KeySource:
    """The key of these settings: AOP_SECRET_KEY, else a loader of the key file."""
    if settings.secret_key is not None:
        return settings.secret_key.encode("ascii")
    return lambda: read_key_file(settings.secret_key_path)


def _fernet(key: bytes) -> Fernet:
    try:
        return Fernet(key)
    except ValueError as exc:
        raise ConfigError(
            "AOP_SECRET_KEY", "(hidden)", "not a Fernet key (32 bytes in URL-safe base64)"
        ) from exc


class SecretService:
    """Sets, lists and deletes secrets; reveals values to executors only.

    `key` is a Fernet key, or a function that gives it (called once, on first use).
    """

    def __init__(self, store: Store, clock: Clock, key: KeySource) -> None:
        self._store = store
        self._clock = clock
        self._key = key
        self._cipher: Fernet | None = None

    def _fernet(self) -> Fernet:
        if self._cipher is None:
            key = self._key() if callable(self._key) else self._key
            self._cipher = _fernet(key)
        return self._cipher

    async def set(self, name: str, value: str) -> SecretInfo:
        """Store `value` (encrypted) as the next version of `name`."""
        check_name(name)
        token = self._fernet().encrypt(_check_value(value).encode("utf-8"))
        saved = await self._store.save_secret(name, token.decode("ascii"), self._clock.now())
        return info_of(saved)

    async def reveal(self, name: str) -> str:
        """The value of a secret, for executors only: never give it to a door.

        Raises SecretNotFound, or SecretKeyMismatch when the key is not the one it was set with.
        """
        secret = await self._store.get_secret(check_name(name))
        try:
            plain = self._fernet().decrypt(secret.ciphertext.encode("ascii"))
        except InvalidToken as exc:
            raise SecretKeyMismatch(name) from exc
        return plain.decode("utf-8")

    async def version(self, name: str) -> int:
        """The current version of a secret (never its value). Raises SecretNotFound.

        A deleted secret set again starts at version 1: cache keys use `revision`."""
        return (await self._store.get_secret(check_name(name))).version

    async def revision(self, name: str) -> str:
        """What result cache keys use, so setting a secret again makes its tasks run again:
        its version and a digest of its ciphertext. Raises SecretNotFound.

        The version alone repeats after a delete; the ciphertext never does, since Fernet
        encrypts each set with a fresh random IV, even of the same value. Its digest tells
        nothing of the value that the stored ciphertext does not already."""
        secret = await self._store.get_secret(check_name(name))
        digest = hashlib.sha256(secret.ciphertext.encode("ascii")).hexdigest()[:16]
        return f"{secret.version}-{digest}"

    async def list(self) -> builtins.list[SecretInfo]:
        """Every secret by name: names, versions and times, never values."""
        return [info_of(secret) for secret in await self._store.list_secrets()]

    async def delete(self, name: str) -> None:
        """Remove a secret; raises SecretNotFound."""
        await self._store.delete_secret(check_name(name))
