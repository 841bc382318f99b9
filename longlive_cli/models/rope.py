"""Rotary position embedding applied to attention heads (shared by the transformer and the KV caches)."""

from __future__ import annotations

import torch


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate adjacent channel pairs of ``x`` ``[B, S, heads, head_dim]`` by RoPE angles.

    ``cos``/``sin`` are ``[1, S, 1, head_dim]`` with each angle repeated for its pair. The
    rotation runs in the tables' dtype (float64 for float32 models, like the official
    ``causal_rope_apply``) and the result is cast back to ``x.dtype``.
    """
    x1, x2 = x.to(cos.dtype).unflatten(-1, (-1, 2)).unbind(-1)
    c, s = cos[..., 0::2], sin[..., 1::2]
    return torch.stack([x1 * c - x2 * s, x1 * s + x2 * c], dim=-1).flatten(-2).to(x.dtype)
