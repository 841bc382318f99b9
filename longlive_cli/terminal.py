"""Text from users shown on a terminal: control characters escaped, so a prompt cannot move the cursor,
retitle the window, clear the screen or hide text (CSI/OSC escape sequences, NUL, bidirectional overrides).

Only what is printed is escaped; storyboards, session storyboards, events and embeddings keep the raw text.
Torch-free.
"""

from __future__ import annotations

import unicodedata

__all__ = ["printable"]

#: Format characters that reorder or hide text on a terminal (Trojan Source: CVE-2021-42574).
_BIDI = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def printable(text: str, *, newlines: bool = False) -> str:
    """``text`` with every control character (C0, DEL, C1) and bidirectional control escaped as Python
    writes it (``\\x1b``, ``\\x00``, ``\\u202e``); a backslash stays as it is, other characters (emoji,
    accents, any script) too. ``newlines``: keep line breaks (a message of several lines).

    >>> printable("a\\x1b[2Jb")
    'a\\\\x1b[2Jb'
    """
    if text.isprintable():
        return text
    out = []
    for char in text:
        if newlines and char == "\n":
            out.append(char)
        elif char in _BIDI or unicodedata.category(char) == "Cc":
            code = ord(char)
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
        else:
            out.append(char)
    return "".join(out)
