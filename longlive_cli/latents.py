"""The latents file of ``generate --save-latents``: ``[1, L, 16, h, w]`` float32 safetensors with the plan in
its metadata.

``longlive decode`` turns such a file back into a video with any decoder.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import torch

from .errors import InputError
from .fileio import atomic_output
from .storyboard import Plan

__all__ = ["LATENTS_FORMAT", "read_latents", "write_latents"]

LATENTS_FORMAT = "longlive-latents/1"


def write_latents(path: str | Path, latents: torch.Tensor, plan: Plan, *, seed: int, model: str) -> Path:
    """Save ``latents`` ``[1, L, 16, h, w]`` (float32) as safetensors, the plan and seed in the metadata.

    Written to a temporary file beside ``path`` and renamed, so ``path`` is never half-written.
    """
    from safetensors.torch import save_file

    meta = {
        "format": LATENTS_FORMAT,
        "plan": json.dumps(dataclasses.asdict(plan)),
        "seed": str(seed),
        "model": model,
    }
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
    if latents.ndim != 5 or latents.shape[0] != 1 or latents.shape[2] != 16:
        raise InputError(f"{path}: latents have shape {tuple(latents.shape)}, expected [1, L, 16, h, w]")
    return latents, json.loads(meta["plan"])
