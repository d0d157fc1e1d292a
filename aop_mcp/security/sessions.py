"""Dashboard sessions: a bearer token sealed into a cookie, with its CSRF secret.

The cookie holds the token and a random CSRF value, encrypted and authenticated with a
Fernet key derived (HKDF) from the hub's secret key, so a session outlives a restart and is
shared by every node with the same key, while the secret key itself is never used twice for
two purposes. A session carries no role: every request verifies the token again, so revoking
it signs the browser out at once. Expiry is Fernet's own timestamp check.
"""

from __future__ import annotations

import base64
import hmac
import json
import secrets
from dataclasses import dataclass, field

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

#: How long a sign-in lasts, in seconds.
SESSION_SECONDS = 12 * 3600
_PURPOSE = b"aop-mcp dashboard session v1"


@dataclass(frozen=True, slots=True)
class Session:
    """A signed-in browser: the token it signed in with and its CSRF secret."""

    # Both are secrets: a log line or traceback that shows a context must not show them.
    token: str = field(default="", repr=False)
    csrf: str = field(default="", repr=False)

    def csrf_matches(self, presented: str | None) -> bool:
        """Whether a form or header carried this session's CSRF value (constant time)."""
        if not presented or not self.csrf:
            return False
        return hmac.compare_digest(presented.encode(), self.csrf.encode())


class SessionSealer:
    """Seals sessions into cookie values and opens them again."""

    def __init__(self, secret_key: bytes, max_age: int = SESSION_SECONDS) -> None:
        derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_PURPOSE).derive(
            secret_key
        )
        self._fernet = Fernet(base64.urlsafe_b64encode(derived))
        self.max_age = max_age

    def new(self, token: str) -> tuple[str, Session]:
        """A fresh session for `token` (a new CSRF value), and its cookie value."""
        session = Session(token=token, csrf=secrets.token_urlsafe(24))
        return self.seal(session), session

    def seal(self, session: Session) -> str:
        """The cookie value of a session."""
        payload = json.dumps({"t": session.token, "c": session.csrf}, separators=(",", ":"))
        return self._fernet.encrypt(payload.encode()).decode("ascii")

    def open(self, cookie: str | None) -> Session | None:
        """The session sealed in `cookie`; None when absent, forged, or older than max_age."""
        if not cookie:
            return None
        try:
            payload = json.loads(self._fernet.decrypt(cookie.encode("ascii"), ttl=self.max_age))
        except (InvalidToken, UnicodeError, ValueError):
            return None
        if not isinstance(payload, dict):
            return None
        token, csrf = payload.get("t"), payload.get("c")
        if not isinstance(token, str) or not isinstance(csrf, str):
            return None
        return Session(token=token, csrf=csrf)
