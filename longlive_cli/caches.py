"""``longlive cache``: what the project's caches hold, and clearing them. Torch-free.

The caches live under ``$LONGLIVE_CACHE``, else the platform's user cache folder (on Linux
``$XDG_CACHE_HOME/longlive``, by default ``~/.cache/longlive``; :func:`~longlive_cli.models.spec.cache_root`):
``converted/`` (generators converted to diffusers keys with
the LoRA merged, one safetensors file per source and dtype) and ``embeddings/`` (prompt embeddings, one small
safetensors file per prompt, encoder and dtype). Only the files this project writes there are counted and
removed: ``*.safetensors`` entries and the hidden temporary files of an interrupted write.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from pathlib import Path

from .models.spec import CACHE_FOLDERS

__all__ = ["CacheEntry", "CacheFolder", "clear_caches", "list_caches"]


@dataclass(frozen=True)
class CacheEntry:
    """One file of a cache: its path, size in bytes and modification time (seconds since the epoch)."""

    path: Path
    size: int
    mtime: float

    @property
    def modified(self) -> str:
        """The modification time as ``YYYY-MM-DD HH:MM`` (local time)."""
        return datetime.datetime.fromtimestamp(self.mtime).strftime("%Y-%m-%d %H:%M")


@dataclass(frozen=True)
class CacheFolder:
    """A cache folder (``name``: ``converted`` or ``embeddings``) and its entries, largest first."""

    name: str
    folder: Path
    entries: tuple[CacheEntry, ...]

    @property
    def size(self) -> int:
        """Bytes in all entries."""
        return sum(e.size for e in self.entries)


def _ours(path: Path) -> bool:
    return path.is_file() and (
        path.suffix == ".safetensors" or (path.name.startswith(".") and ".part-" in path.name)
    )


def _selected(what: str) -> list[str]:
    if what == "all":
        return list(CACHE_FOLDERS)
    if what not in CACHE_FOLDERS:
        raise ValueError(f"unknown cache {what!r}; use {', '.join(CACHE_FOLDERS)} or all")
    return [what]


def list_caches(what: str = "all") -> list[CacheFolder]:
    """The cache folders named by ``what`` (``converted``, ``embeddings`` or ``all``) with their entries.

    Raises:
        ValueError: an unknown ``what``.
    """
    out = []
    for name in _selected(what):
        folder = CACHE_FOLDERS[name]()
        files = [p for p in folder.iterdir() if _ours(p)] if folder.is_dir() else []
        entries = [CacheEntry(p, p.stat().st_size, p.stat().st_mtime) for p in files]
        entries.sort(key=lambda e: (-e.size, e.path.name))
        out.append(CacheFolder(name, folder, tuple(entries)))
    return out


def clear_caches(what: str = "all") -> list[CacheFolder]:
    """Remove the entries of the caches named by ``what``; returns what was removed, per folder.

    Raises:
        ValueError: an unknown ``what``.
        OSError: an entry cannot be removed.
    """
    removed = list_caches(what)
    for cache in removed:
        for entry in cache.entries:
            entry.path.unlink(missing_ok=True)
    return removed
