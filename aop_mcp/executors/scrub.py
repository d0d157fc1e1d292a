"""Secret values out of what an attempt produced: its output text and the JSON parsed from it.

A secret is matched as it is and as JSON may spell it inside a string (escapes, \\uXXXX in
either case), since a command that prints JSON escapes what it prints.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

MASK = "***"


class Scrubber:
    """Replaces secret values with ***: as they are, and as JSON spells them in a string.

    Every value is masked, however short: one of a few characters also masks the same
    characters where they mean something else, and the output is the worse for it, but a
    secret is never shown. A value the command transforms (base64, reversed) is not found.
    """

    def __init__(self, values: Iterable[str]) -> None:
        # Longest first: a value that contains another must go whole.
        ordered = sorted({value for value in values if value}, key=len, reverse=True)
        self._patterns = [_spellings(value) for value in ordered]

    def text(self, text: str) -> str:
        """`text` with every spelling of every secret replaced by ***."""
        for pattern in self._patterns:
            text = pattern.sub(MASK, text)
        return text

    def parsed(self, value: Any) -> Any:
        """A value parsed from JSON with every string (keys too) scrubbed: parsing decodes
        spellings `text` may have missed (a non-Python escape of a long value)."""
        if not self._patterns or value is None:
            return value
        try:
            return self._tree(value)
        except RecursionError:  # deeper than the walk can go: better no JSON than a leak
            return None

    def _tree(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, list):
            return [self._tree(item) for item in value]
        if isinstance(value, dict):
            return {self.text(key): self._tree(item) for key, item in value.items()}
        return value


# What JSON may write for a character inside a string, besides \uXXXX and itself.
_SHORT_ESCAPES = {
    '"': '\\"',
    "\\": "\\\\",
    "/": "\\/",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
}
# Up to this length a value is matched in every JSON spelling, character by character (the
# pattern takes about 25 ms to compile at 1024); longer ones (keys, certificates) as they are
# and as Python's and most other JSON writers spell them.
_EVERY_SPELLING_UP_TO = 1024


def _spellings(value: str) -> re.Pattern[str]:
    """A pattern that matches `value` as it is, and as JSON may write it in a string."""
    if len(value) <= _EVERY_SPELLING_UP_TO:
        return re.compile("".join(_char_spellings(char) for char in value))
    usual = json.dumps(value, ensure_ascii=False)[1:-1]
    forms = {value, json.dumps(value)[1:-1], usual}
    return re.compile("|".join(re.escape(form) for form in sorted(forms, key=len, reverse=True)))


def _char_spellings(char: str) -> str:
    forms = [re.escape(char), _unicode_escape(char)]
    if char in _SHORT_ESCAPES:
        forms.append(re.escape(_SHORT_ESCAPES[char]))
    return f"(?:{'|'.join(forms)})"


def _unicode_escape(char: str) -> str:
    """\\uXXXX, hex digits in either case, for each UTF-16 unit (a pair beyond the BMP)."""
    data = char.encode("utf-16-be")
    units = (data[i : i + 2].hex() for i in range(0, len(data), 2))
    return "".join(
        "\\\\u" + "".join(f"[{d}{d.upper()}]" if d.isalpha() else d for d in unit) for unit in units
    )
