"""Reading weight files safely, and the one LoRA merge.

Shared by the official checkpoints (:mod:`~longlive_cli.models.checkpoints`), the user LoRAs
(:mod:`~longlive_cli.models.user_loras`) and the decoders' files. Everything is read with
``torch.load(weights_only=True)`` (or safetensors): a file that needs arbitrary unpickling is refused.
"""

from __future__ import annotations

import os
import pickle
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch

from ..errors import ModelError

__all__ = [
    "CheckpointError",
    "StrPath",
    "add_lora",
    "load_flat_state_dict",
    "name_listing",
    "safe_torch_load",
]

StrPath = str | os.PathLike
MAX_LISTED = 10


class CheckpointError(ModelError, ValueError):
    """A checkpoint file cannot be used (exit 3); ``str()`` names the file, what is wrong and what to do."""


def name_listing(names: Iterable[str], limit: int = MAX_LISTED) -> str:
    names = sorted(names)
    shown = ", ".join(names[:limit])
    more = f", ... ({len(names) - limit} more)" if len(names) > limit else ""
    return f"{shown}{more}"


def safe_torch_load(path: Path, what: str) -> Any:
    """``torch.load`` restricted to tensors and plain containers, with errors people can act on."""
    if not path.is_file():
        raise CheckpointError(f"{what} {path}: no such file. Check the path, or download the weights again.")
    try:
        try:
            return torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError as e:
            if "mmap" not in str(e):
                raise
            # Legacy (pre-zipfile) torch.save format cannot be memory-mapped; read it whole.
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        # torch's restricted unpickler names the class it would have had to import ("Unsupported global:
        # GLOBAL module.Name"); anything else from it means the bytes are not a pickle it understands.
        found = re.search(r"GLOBAL (\S+)", str(e))
        if found is None and "global" not in str(e).lower():
            raise CheckpointError(
                f"{what} {path} is not a readable PyTorch checkpoint ({str(e).splitlines()[-1].strip()}). "
                "It may be truncated or of another format; download it again."
            ) from e
        culprit = f" (it contains {found[1]})" if found else ""
        raise CheckpointError(
            f"{what} {path} holds Python objects other than tensors and plain containers{culprit}, so "
            "loading it could run arbitrary code; it is refused for safety. Use the official file from the "
            "Hub, or re-save just the state dict (a dict of tensors) with torch.save or safetensors."
        ) from e
    except Exception as e:  # zip/pickle/IO errors of a truncated or foreign file
        raise CheckpointError(
            f"{what} {path} is not a readable PyTorch checkpoint ({type(e).__name__}: {e}). "
            "It may be truncated or of another format; download it again."
        ) from e


def load_flat_state_dict(path: StrPath, what: str, *, hint: str = "") -> dict[str, torch.Tensor]:
    """A flat ``{name: tensor}`` from a ``.safetensors`` file or a ``torch.save`` file.

    torch files are read like official checkpoints (:func:`safe_torch_load`: ``weights_only``, memory-mapped
    when possible). ``what`` names the file in messages, ``hint`` says what to pass instead.

    Raises:
        CheckpointError: unreadable, unsafe, or not a flat dict of tensors.
    """
    path = Path(path)
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(str(path), device="cpu")
        except (SafetensorError, OSError) as e:
            raise CheckpointError(f"{what} {path} is not a readable safetensors file ({e}).") from e
    sd = safe_torch_load(path, what)
    if not isinstance(sd, dict) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in sd.items()
    ):
        raise CheckpointError(
            f"{path}: expected a flat state dict {{name: tensor}} (as torch.save(model.state_dict())), got "
            f"{type(sd).__name__}{'; ' + hint if hint else ''}"
        )
    return sd


def add_lora(weight: torch.Tensor, a: torch.Tensor, b: torch.Tensor, scale: float) -> torch.Tensor:
    """The one LoRA merge: ``W + scale * (B @ A)``, in float32.

    Args:
        weight: ``W``, ``[out, in]``, float32 (the caller rounds the result to the weight's dtype once, after
            every LoRA it merges).
        a: ``A`` (lora_A), ``[rank, in]``; any float dtype.
        b: ``B`` (lora_B), ``[out, rank]``; any float dtype.
        scale: ``alpha / rank`` (peft's ``LoraLayer.scaling`` without rsLoRA) times any user scale.

    Returns:
        A new float32 tensor ``[out, in]``. Shapes are the caller's to check (it names the file).
    """
    return weight + scale * (b.to(torch.float32) @ a.to(torch.float32))
