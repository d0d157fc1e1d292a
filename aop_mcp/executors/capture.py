"""Output capture shared by the executors: byte caps, decoding, JSON detection."""

from __future__ import annotations

import asyncio
import json
from typing import Any

# Only text that starts like a JSON value is worth a parse attempt: most stdout is prose.
_JSON_START = frozenset('{["-0123456789tfn')
_READ_SIZE = 65536


class CappedBuffer:
    """Keeps the first `cap` bytes of a stream and counts the rest as truncated."""

    __slots__ = ("cap", "chunks", "size", "truncated")

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.chunks: list[bytes] = []
        self.size = 0
        self.truncated = False

    def add(self, chunk: bytes) -> None:
        """Keep what fits under the cap; mark the buffer truncated when anything is dropped."""
        room = self.cap - self.size
        if len(chunk) > room:
            self.truncated = True
            chunk = chunk[: max(room, 0)]
        if chunk:
            self.chunks.append(chunk)
            self.size += len(chunk)

    async def drain(self, stream: asyncio.StreamReader) -> None:
        """Read `stream` to its end; past the cap bytes are discarded, never left in the pipe,
        so the writer can not block on a full pipe."""
        while chunk := await stream.read(_READ_SIZE):
            self.add(chunk)

    def text(self) -> str:
        return b"".join(self.chunks).decode("utf-8", errors="replace")


def parse_json(text: str) -> Any:
    """The JSON value `text` holds, or None when it is not JSON."""
    text = text.strip()
    if not text or text[0] not in _JSON_START:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


def cap_text(text: str, cap: int) -> tuple[str, bool]:
    """`text` cut to at most `cap` UTF-8 bytes, and whether it was cut."""
    if len(text) * 4 <= cap:  # cannot exceed the cap whatever the characters: skip encoding
        return text, False
    data = text.encode("utf-8")
    if len(data) <= cap:
        return text, False
    # A cut inside a multi-byte character drops that character rather than mangling it.
    return data[:cap].decode("utf-8", errors="ignore"), True


def last_line(text: str, limit: int = 200) -> str:
    """The last non-blank line of `text`, trimmed to `limit` characters: a failure's gist."""
    for line in reversed(text.splitlines()):
        line = line.strip()
        if line:
            return line if len(line) <= limit else line[: limit - 1] + "…"
    return ""
