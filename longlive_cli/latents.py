"""The latents file of ``generate --save-latents``: ``[1, L, 16, h, w]`` float32 safetensors with the plan in
its metadata.

:class:`LatentsWriter` streams it: the safetensors header is written first, sized for the plan's ``L`` (known
before the first block), and each block's latents are appended as they come, so nothing is held in memory
whatever the length (``L * 16 * h * w * 4`` bytes on disk: 96 MB for 240 s at 832x480, 1.4 GB an hour). A
video that ends early gets its header rewritten for the frames written (padded with spaces, which the format
allows) and the file cut there. ``longlive decode`` turns such a file back into a video with any decoder,
reading it block by block (:func:`open_latents`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import struct
from pathlib import Path
from typing import Any

import torch

from .errors import InputError, OutputError
from .fileio import atomic_output, make_temp_beside, remove, replace
from .storyboard import Plan

__all__ = [
    "LATENTS_FORMAT",
    "LatentsView",
    "LatentsWriter",
    "open_latents",
    "read_latents",
    "write_latents",
]

LATENTS_FORMAT = "longlive-latents/1"
#: Latent channels a latents file may hold: Wan2.1's 16 (LongLive 1.0) and Wan2.2's 48 (LongLive 2.0).
LATENT_CHANNELS = (16, 48)
_C = " or ".join(map(str, LATENT_CHANNELS))


def write_latents(path: str | Path, latents: torch.Tensor, plan: Plan, *, seed: int, model: str) -> Path:
    """Save ``latents`` ``[1, L, 16, h, w]`` (float32) as safetensors, the plan and seed in the metadata.

    Written to a temporary file beside ``path`` and renamed, so ``path`` is never half-written.
    """
    from safetensors.torch import save_file

    meta = _metadata(plan, seed, model)
    with atomic_output(path) as tmp:
        save_file({"latents": latents.float().contiguous()}, str(tmp), metadata=meta)
    return Path(path)


def read_latents(path: str | Path) -> tuple[torch.Tensor, dict]:
    """Load a file written by :func:`write_latents`: ``(latents [1, L, 16, h, w], plan as a dict)``.

    Raises:
        InputError: not such a file (names the file and what is wrong; a ValueError, exit 2).
    """
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            if meta.get("format") != LATENTS_FORMAT or "latents" not in f.keys():  # noqa: SIM118
                raise InputError(f"{path} is not a latents file from `longlive generate --save-latents`")
            latents = f.get_tensor("latents")
    except (SafetensorError, OSError) as err:
        raise InputError(f"cannot read latents file {path}: {err}") from None
    if latents.ndim != 5 or latents.shape[0] != 1 or latents.shape[2] not in LATENT_CHANNELS:
        raise InputError(
            f"{path}: latents have shape {tuple(latents.shape)}, expected [1, L, C, h, w] with C {_C}"
        )
    return latents, json.loads(meta["plan"])


def _metadata(plan: Plan, seed: int, model: str) -> dict[str, str]:
    return {
        "format": LATENTS_FORMAT,
        "plan": json.dumps(dataclasses.asdict(plan)),
        "seed": str(seed),
        "model": model,
    }


def _header(shape: tuple[int, ...], meta: dict[str, str]) -> bytes:
    nbytes = 4 * shape[0] * shape[1] * shape[2] * shape[3] * shape[4]
    entry = {"dtype": "F32", "shape": list(shape), "data_offsets": [0, nbytes]}
    return json.dumps({"latents": entry, "__metadata__": meta}, separators=(",", ":")).encode()


class LatentsWriter:
    """Writes ``[1, L, C, h, w]`` float32 latents to a safetensors file block by block (see the module docs).

    Args:
        path: the file; written under a temporary name beside it and renamed by :meth:`close`.
        plan: the video's plan (its ``num_latent_frames`` sizes the header; stored as metadata).
        seed, model: stored as metadata.
        latent_channels: C (16); ``h``, ``w`` are the plan's pixels / ``spatial_stride`` (8).
        overwrite: replace an existing ``path`` at :meth:`close` (it is checked before anything is written).

    Raises:
        OutputError: ``path`` exists without ``overwrite``, or cannot be created.
    """

    def __init__(
        self,
        path: str | Path,
        plan: Plan,
        *,
        seed: int,
        model: str,
        latent_channels: int = 16,
        spatial_stride: int = 8,
        overwrite: bool = False,
    ) -> None:
        self.path = Path(path)
        if self.path.exists() and not overwrite:
            raise OutputError(f"{self.path} already exists (use --force to replace it)")
        self._frame_shape = (latent_channels, plan.height // spatial_stride, plan.width // spatial_stride)
        self._meta = _metadata(plan, seed, model)
        planned = _header((1, plan.num_latent_frames, *self._frame_shape), self._meta)
        self._header_len = -(-(len(planned) + 16) // 8) * 8  # room for any shorter L; 8-byte aligned data
        try:
            self._tmp = make_temp_beside(self.path)
            self._file: Any = open(self._tmp, "r+b")  # noqa: SIM115 - closed by close() / abort()
        except OSError as err:
            raise OutputError(f"cannot write latents file {self.path}: {err}") from None
        self._file.write(b"\0" * (8 + self._header_len))  # the header goes here at close()
        self.frames = 0

    def write(self, latents: torch.Tensor) -> None:
        """Append ``latents`` ``[1, n, C, h, w]`` (any dtype or device; stored as float32)."""
        if tuple(latents.shape[2:]) != self._frame_shape or latents.shape[0] != 1:
            raise ValueError(f"latents of shape {tuple(latents.shape)} do not fit {self._frame_shape}")
        data = latents.detach().to("cpu", torch.float32).contiguous()
        self._file.write(data.numpy().tobytes())
        self.frames += latents.shape[1]

    def close(self) -> Path:
        """Write the header for the frames written, cut the file there and rename it onto ``path``."""
        header = _header((1, self.frames, *self._frame_shape), self._meta)
        header += b" " * (self._header_len - len(header))
        try:
            self._file.seek(0)
            self._file.write(struct.pack("<Q", self._header_len) + header)
            self._file.truncate(8 + self._header_len + 4 * self.frames * _prod(self._frame_shape))
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            replace(self._tmp, self.path)
        except OSError as err:
            self.abort()
            raise OutputError(f"cannot write latents file {self.path}: {err}") from None
        return self.path

    def abort(self) -> None:
        """Drop the unfinished file."""
        with contextlib.suppress(OSError):
            self._file.close()
        remove(self._tmp)


def _prod(shape: tuple[int, ...]) -> int:
    out = 1
    for n in shape:
        out *= n
    return out


class LatentsView:
    """The latents of a file, read on demand: ``shape`` ``(1, L, 16, h, w)``; ``view[:, a:b]`` reads latent
    frames ``a .. b-1`` (float32 tensor). From :func:`open_latents`."""

    def __init__(self, handle: Any, data: Any, shape: tuple[int, ...]) -> None:
        self._handle, self._data, self.shape = handle, data, shape  # the handle keeps the file open

    def __getitem__(self, index: Any) -> torch.Tensor:
        return self._data[index]


def _check_regular(path: str | Path) -> None:
    """A latents file must be a regular file (a FIFO would block the reader, a device never end).

    Raises:
        InputError: missing, or not a regular file (says what it is).
    """
    import stat

    try:
        mode = os.stat(path).st_mode
    except OSError as err:
        raise InputError(f"cannot read latents file {path}: {err.strerror}") from None
    if not stat.S_ISREG(mode):
        what = "a folder" if stat.S_ISDIR(mode) else "a FIFO" if stat.S_ISFIFO(mode) else "not a regular file"
        raise InputError(
            f"latents file {path} is {what}; give a file from `longlive generate --save-latents`"
        )


def latents_model(path: str | Path) -> str | None:
    """The model a latents file was made with (its ``model`` metadata), or None when it does not say.

    Raises:
        InputError: as :func:`open_latents`.
    """
    from safetensors import SafetensorError, safe_open

    _check_regular(path)
    try:
        with safe_open(str(path), framework="pt") as f:
            return (f.metadata() or {}).get("model") or None
    except (SafetensorError, OSError) as err:
        raise InputError(f"cannot read latents file {path}: {err}") from None


def open_latents(path: str | Path) -> tuple[LatentsView, dict]:
    """Open a file written by :func:`write_latents` or :class:`LatentsWriter` without reading its data:
    ``(view, plan as a dict)`` (``longlive decode`` reads block by block, so memory does not grow with the
    video).

    Raises:
        InputError: not such a file (names the file and what is wrong; a ValueError, exit 2).
    """
    from safetensors import SafetensorError, safe_open

    _check_regular(path)
    try:
        f = safe_open(str(path), framework="pt")
        meta = f.metadata() or {}
        if meta.get("format") != LATENTS_FORMAT or "latents" not in f.keys():  # noqa: SIM118
            raise InputError(f"{path} is not a latents file from `longlive generate --save-latents`")
        data = f.get_slice("latents")
        shape = tuple(data.get_shape())
    except (SafetensorError, OSError) as err:
        raise InputError(f"cannot read latents file {path}: {err}") from None
    if len(shape) != 5 or shape[0] != 1 or shape[2] not in LATENT_CHANNELS:
        raise InputError(f"{path}: latents have shape {shape}, expected [1, L, C, h, w] with C {_C}")
    return LatentsView(f, data, shape), json.loads(meta["plan"])
