"""The storyboard's error and the small helpers that put values into its messages.

Torch-free. Every rejection of a storyboard, a storyboard value or a command-line value that stands in
for one is a :class:`StoryboardError`.
"""

from __future__ import annotations

import math
from typing import Any

from ..errors import InputError

__all__ = ["StoryboardError"]


class StoryboardError(InputError):
    """A storyboard the tool cannot use (an :class:`~longlive_cli.errors.InputError`, so a
    ``ValueError``; exit 2). ``str(err)`` is the full human message.

    Attributes: ``message`` (what is wrong and what to do), ``path`` (file, or None), ``line`` and
    ``column`` (1-based, or None), ``field`` (e.g. ``"prompts[1].at"``, or None).

    ``str(err)`` looks like ``story.yaml:7:5: prompts[1].at: 12s is not before ...``: the location
    prefix holds whatever parts are known (``line 7, column 5: `` when there is no path).
    """

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        line: int | None = None,
        column: int | None = None,
        field: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.path = path
        self.line = line
        self.column = column
        self.field = field

    def __str__(self) -> str:
        prefix = ""
        if self.path is not None:
            parts = [self.path]
            if self.line is not None:
                parts.append(str(self.line))
                if self.column is not None:
                    parts.append(str(self.column))
            prefix = ":".join(parts) + ": "
        elif self.line is not None:
            prefix = (
                f"line {self.line}" + (f", column {self.column}" if self.column is not None else "") + ": "
            )
        if self.field:
            prefix += f"{self.field}: "
        return prefix + self.message

    def _locate(
        self, *, path: str | None = None, line: int | None = None, column: int | None = None
    ) -> StoryboardError:
        # Fill in only what the raiser did not know; the innermost raiser knows best.
        if self.path is None:
            self.path = path
        if self.line is None and line is not None:
            self.line, self.column = line, column
        return self


def _fmt_s(seconds: float) -> str:
    """Seconds for messages: ``12s``, ``12.5s``, ``10.3125s`` (no float noise)."""
    try:
        value = float(seconds)
    except OverflowError:  # an int beyond float range (hand-built storyboards, command-line values)
        return f"{_show_int(int(seconds))} seconds"
    if not math.isfinite(value) or abs(value) >= 1e15:
        return f"{value:.6g}s"
    text = f"{value:.6f}".rstrip("0").rstrip(".")
    return f"{text}s"


def _clip(text: str, limit: int = 60) -> str:
    """``repr(text)`` for messages, cut short (with the full length) when ``text`` is long."""
    if len(text) <= limit:
        return repr(text)
    return f"{text[: limit - 20]!r}... ({len(text)} characters)"


def _short_name(name: str, limit: int = 60) -> str:
    """A key as a field name in messages, cut short when long."""
    return name if len(name) <= limit else f"{name[: limit - 20]}..."


def _show_int(value: int) -> str:
    # str() of an int over 4300 digits raises ValueError (CPython's int_max_str_digits guard).
    if value.bit_length() <= 128:
        return str(value)
    digits = int(value.bit_length() * math.log10(2)) + 1
    return f"{'-' if value < 0 else ''}a number of about {digits} digits"


def _describe(value: Any) -> str:
    """Any value for messages: ``empty (null)``, ``true (a boolean)``, a clipped repr, ``a list`` ..."""
    if value is None:
        return "empty (null)"
    if isinstance(value, bool):
        return f"{str(value).lower()} (a boolean)"
    if isinstance(value, str):
        return _clip(value)
    if isinstance(value, int):
        return _show_int(value)
    if isinstance(value, float):
        return str(value)
    if isinstance(value, (list, tuple)):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return f"a {type(value).__name__}"
