"""Write-then-rename: outputs appear whole under their final name, or not at all.

Every file or folder this project writes for a user (MP4, latents, the converted-weights cache, a quantized
model folder) is first written under a hidden temporary name beside its target (same folder, so the
rename is atomic on one file system) and renamed onto the target when complete. Temporary files are
created exclusively with mode ``0o666`` and folders with ``0o777``, both less the user's umask, so the
result has the permissions of any file the user makes (a shared cache stays readable by the group).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path

__all__ = ["atomic_output", "make_temp_beside", "remove", "replace"]


def make_temp_beside(dest: str | Path, *, folder: bool = False) -> Path:
    """Create an empty hidden file (or folder) ``.<name>.part-<random>`` beside ``dest`` and return it.

    Raises:
        OSError: the folder of ``dest`` does not exist or cannot be written.
    """
    dest = Path(dest)
    for _ in range(100):
        candidate = dest.with_name(f".{dest.name}.part-{secrets.token_hex(4)}")
        try:
            if folder:
                candidate.mkdir(mode=0o777)
            else:
                os.close(os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        except FileExistsError:
            continue
        return candidate
    raise FileExistsError(f"cannot create a temporary name beside {dest}")  # pragma: no cover


def remove(path: str | Path) -> None:
    """Delete a file or folder if it exists (never raises for a missing one)."""
    path = Path(path)
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def replace(tmp: str | Path, dest: str | Path) -> None:
    """Move ``tmp`` onto ``dest`` atomically; an existing folder ``dest`` is moved aside first and removed
    after (``os.replace`` cannot replace a non-empty folder).

    Raises:
        OSError: the rename failed (``tmp`` is left in place for the caller to remove).
    """
    tmp, dest = Path(tmp), Path(dest)
    if dest.is_dir() and not dest.is_symlink():
        old = dest.with_name(f".{dest.name}.old-{secrets.token_hex(4)}")
        os.replace(dest, old)
        try:
            os.replace(tmp, dest)
        except OSError:
            os.replace(old, dest)
            raise
        remove(old)
    else:
        os.replace(tmp, dest)


@contextlib.contextmanager
def atomic_output(dest: str | Path, *, folder: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``dest`` to write into; on success it is renamed onto ``dest``
    (replacing what was there), on any exception it is removed and ``dest`` is left as it was.

    Raises:
        OSError: creating the temporary path or the final rename failed.
    """
    dest = Path(dest)
    tmp = make_temp_beside(dest, folder=folder)
    try:
        yield tmp
        replace(tmp, dest)
    except BaseException:
        remove(tmp)
        raise
