"""Write-then-rename: outputs appear whole under their final name, or not at all.

Every file or folder this project writes for a user (MP4, latents, the converted-weights cache, a quantized
model folder) is first written under a hidden temporary name beside its target (same folder, so the
rename is atomic on one file system) and renamed onto the target when complete. Temporary files are
created exclusively with mode ``0o666`` and folders with ``0o777``, both less the user's umask, and set to
those modes again just before the rename (with every file and folder inside a folder output): some writers
replace the file they are given by one of their own with mode ``0o600`` (safetensors 0.8 writes a
temporary file and renames it), and the result must have the permissions of any file the user makes (a
shared cache stays readable by the group).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path

__all__ = ["apply_umask", "atomic_output", "make_temp_beside", "remove", "replace", "user_umask"]


def user_umask() -> int:
    """The process's umask (read from ``/proc/self/status`` where it is there, else set and restored)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)  # no way to read it without setting it; restored at once
    os.umask(mask)
    return mask


def apply_umask(path: str | Path) -> None:
    """Give ``path`` the mode a new file (``0o666``) or folder (``0o777``) gets under the user's umask, and
    the same to everything inside a folder (symbolic links are left alone).

    Raises:
        OSError: a mode cannot be changed.
    """
    mask = user_umask()
    path = Path(path)
    if path.is_symlink():
        return
    if not path.is_dir():
        os.chmod(path, 0o666 & ~mask)
        return
    os.chmod(path, 0o777 & ~mask)
    for root, dirs, files in os.walk(path):
        for name in dirs:
            if not os.path.islink(os.path.join(root, name)):
                os.chmod(os.path.join(root, name), 0o777 & ~mask)
        for name in files:
            if not os.path.islink(os.path.join(root, name)):
                os.chmod(os.path.join(root, name), 0o666 & ~mask)


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
    """Yield a temporary path beside ``dest`` to write into; on success it gets the user's default modes
    (:func:`apply_umask`) and is renamed onto ``dest`` (replacing what was there), on any exception it is
    removed and ``dest`` is left as it was.

    Raises:
        OSError: creating the temporary path or the final rename failed.
    """
    dest = Path(dest)
    tmp = make_temp_beside(dest, folder=folder)
    try:
        yield tmp
        apply_umask(tmp)
        replace(tmp, dest)
    except BaseException:
        remove(tmp)
        raise
