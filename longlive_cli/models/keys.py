"""Helpers for naming state-dict keys in error messages."""

from __future__ import annotations

import re
from collections.abc import Sequence


def natural_key(key: str) -> list:
    """Sort key that orders ``blocks.2`` before ``blocks.10``."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", key)]


def key_list(keys: Sequence[str], limit: int = 8) -> str:
    """Keys for an error message: ``none``, or the first ``limit`` and how many more."""
    keys = list(keys)
    if not keys:
        return "none"
    shown = ", ".join(keys[:limit])
    return shown if len(keys) <= limit else f"{shown} (+{len(keys) - limit} more)"
