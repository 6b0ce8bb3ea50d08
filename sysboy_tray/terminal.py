"""Text from the network made safe for a terminal: control characters shown, never obeyed.

A meter's name, firmware and board strings, and an error's reason, come from whoever
is on the LAN. Printed raw, an escape sequence in them could rewrite the screen or set
the clipboard (OSC 52); a newline could forge a log line. Here each such character is
written as a visible escape instead (`\\x1b`, `\\u202e`), as `repr` would.
"""

from __future__ import annotations

import json
import re
from typing import Any

# C0 and C1 controls and DEL, line and paragraph separators, and the bidirectional
# overrides and isolates that can make text read differently from what it holds
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u200e\u200f\u061c\u202a-\u202e\u2066-\u2069]")
_UNSAFE_KEEPING_LINES = re.compile(
    "[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029\u200e\u200f\u061c\u202a-\u202e\u2066-\u2069]"
)


def _escaped(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: str) -> str:
    """`text` with every control character written as a visible escape (newlines too)."""
    return _UNSAFE.sub(_escaped, text)


def printable_lines(text: str) -> str:
    """Like `printable`, but newlines stay: for text made of lines we wrote ourselves."""
    return _UNSAFE_KEEPING_LINES.sub(_escaped, text)


def json_text(value: Any, indent: int | None = 2) -> str:
    """JSON for a terminal: non-ASCII letters kept, every control character escaped."""
    text = json.dumps(value, indent=indent, ensure_ascii=False)
    # json escapes C0 controls in strings itself; what is left of them (DEL, C1, bidi)
    # can only be inside strings, where \uXXXX means the same character
    return _UNSAFE_KEEPING_LINES.sub(lambda m: f"\\u{ord(m.group()):04x}", text)
