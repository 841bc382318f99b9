"""Weight files checked before they are opened: what a path given as weights really is, and whether a
safetensors file is whole.

Every part of a model passes here (:func:`~longlive_cli.models.spec.fetch_components`) before a loader
opens it, so that

* a FIFO, a device such as ``/dev/zero``, a socket or a folder where a file is expected is named for what it
  is, without being opened (opening a FIFO for reading blocks until a writer comes; reading ``/dev/zero``
  never ends);
* an empty file, or a safetensors file whose header is cut, claims more bytes than the file has (a header
  length field of 2^40) or whose tensors run past the end of the file, is refused with the file's name,
  before safetensors or transformers read it (transformers would raise a bare ``SafetensorError``);
* a folder (a Hugging Face text encoder, tokenizer or VAE folder) has each of its safetensors files checked
  the same way.

The safetensors layout checked is the format's own (``safetensors`` docs, "Format"): an unsigned 64-bit
little-endian header length ``N``, ``N`` bytes of JSON whose entries give ``data_offsets`` ``[begin, end)``
into the byte buffer that follows. Torch-free.
"""

from __future__ import annotations

import json
import os
import stat
import struct
from pathlib import Path

from ..errors import ModelError

__all__ = ["MAX_HEADER_BYTES", "WeightFileError", "check_safetensors", "check_weight_path"]

#: The largest safetensors header the safetensors library itself reads (100 MB).
MAX_HEADER_BYTES = 100_000_000


class WeightFileError(ModelError):
    """A weight file or folder that cannot be used as one (exit 3); ``str()`` names it and says what it is."""


def _kind(mode: int) -> str | None:
    """What a path that is not a regular file nor a folder is, in words (None for those two)."""
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe), not a weight file; it was not opened"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device (such as /dev/zero), not a weight file; it was not read"
    if stat.S_ISSOCK(mode):
        return "a socket, not a weight file"
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
        return None
    return "not a regular file"


def check_weight_path(path: str | Path, what: str, *, folder: bool = False) -> Path:
    """Check ``path`` (after symbolic links) before any loader opens it; ``what`` names its role in messages
    (``"text encoder"``). A file must be a non-empty regular file (a whole one, for ``.safetensors``); a
    ``folder`` may be a folder (its ``*.safetensors`` files are checked) or a file.

    Returns:
        ``path``.

    Raises:
        WeightFileError: missing; a FIFO, device or socket; a folder where a file is expected; an empty file;
            a cut or inconsistent safetensors file (:func:`check_safetensors`). Each message names the file.
    """
    path = Path(path)
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise WeightFileError(f"{what} {path}: no such file or folder. Check the path.") from None
    except OSError as err:
        raise WeightFileError(f"{what} {path} cannot be read: {err.strerror}.") from None
    kind = _kind(mode)
    if kind is not None:
        raise WeightFileError(f"{what} {path} is {kind}. Give the weights' file.")
    if stat.S_ISDIR(mode):
        if not folder:
            raise WeightFileError(f"{what} {path} is a folder, not a weight file. Give the file inside it.")
        for child in sorted(path.iterdir()):
            if child.suffix == ".safetensors" or child.name.endswith((".bin", ".pth", ".pt")):
                check_weight_path(child, what)
        return path
    if not os.access(path, os.R_OK):
        raise WeightFileError(f"{what} {path} is not readable; fix its permissions.")
    if path.suffix == ".json":
        return path
    size = os.path.getsize(path)
    if size == 0:
        raise WeightFileError(
            f"{what} {path} is empty (0 bytes): a download or copy was cut short. Download it again."
        )
    if path.suffix == ".safetensors":
        check_safetensors(path, what)
    return path


def check_safetensors(path: str | Path, what: str = "weights") -> None:
    """Check that a safetensors file is whole: its header fits in the file, is JSON, and every tensor's
    ``data_offsets`` end within the file. Reads only the header.

    Raises:
        WeightFileError: the file is cut, its header length is impossible, or it is not safetensors.
    """
    path = Path(path)
    size = os.path.getsize(path)
    again = "It may be cut short or of another format; download it again."
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise WeightFileError(
                f"{what} {path} is not a safetensors file ({size} bytes, no header). {again}"
            )
        (length,) = struct.unpack("<Q", head)
        if length > MAX_HEADER_BYTES or 8 + length > size:
            raise WeightFileError(
                f"{what} {path} is not a whole safetensors file: its header claims {length} bytes, the file "
                f"has {size}. {again}"
            )
        raw = f.read(length)
    try:
        header = json.loads(raw)
        ends = [
            int(entry["data_offsets"][1])
            for name, entry in header.items()
            if name != "__metadata__" and isinstance(entry, dict)
        ]
    except (ValueError, KeyError, TypeError, IndexError, AttributeError):
        raise WeightFileError(
            f"{what} {path} is not a safetensors file (its header is not JSON). {again}"
        ) from None
    need = 8 + length + max(ends, default=0)
    if need > size:
        raise WeightFileError(
            f"{what} {path} is cut short: its tensors need {need} bytes, the file has {size}. Download it "
            "again."
        )
