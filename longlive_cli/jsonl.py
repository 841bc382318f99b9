"""JSON lines: one JSON object per line, for ``--json`` and ``--events`` (the machine-readable event log).

Each line is ``{"event": <kind>, ...fields}``; an event object's kind is its class name in snake case
(:func:`event_name`: ``BlockDone`` -> ``block_done``) and its fields are its dataclass fields, converted to
plain JSON (:func:`to_json`).
"""

from __future__ import annotations

import dataclasses
import enum
import json
import sys
from pathlib import Path
from typing import Any, TextIO

__all__ = ["JsonLines", "event_name", "to_json"]


def to_json(kind: str, **fields: Any) -> str:
    """One JSON line ``{"event": kind, ...}``; dataclasses and paths are converted."""

    def plain(value: Any) -> Any:
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            return {k: plain(v) for k, v in dataclasses.asdict(value).items()}
        if isinstance(value, Path):
            return str(value)
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [plain(v) for v in value]
        if isinstance(value, enum.Enum):
            return value.value
        return value

    return json.dumps({"event": kind, **{k: plain(v) for k, v in fields.items()}}, ensure_ascii=False)


def event_name(event: object) -> str:
    """``BlockDone`` -> ``block_done``."""
    name = type(event).__name__
    return "".join("_" + c.lower() if c.isupper() else c for c in name).lstrip("_")


class JsonLines:
    """Writes one JSON object per line to ``stream`` (stdout by default), flushing each."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream if stream is not None else sys.stdout

    def emit(self, kind: str, **fields: Any) -> None:
        self.stream.write(to_json(kind, **fields) + "\n")
        self.stream.flush()

    def event(self, event: Any, **context: Any) -> None:
        fields = {f.name: getattr(event, f.name) for f in dataclasses.fields(event)}
        self.emit(event_name(event), **context, **fields)
