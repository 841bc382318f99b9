"""Blended conditioning: weighted prompts and transitions between prompts, on UMT5 text embeddings.

A storyboard prompt may blend several weighted texts into one conditioning (``text:`` as a list) and may move
into its conditioning from the previous prompt's over a few blocks (``transition: 2s``). Both blend the text
encoder's output embeddings, ``[1, n, text_dim]`` (rows past a prompt's tokens are zeros, so embeddings of
different lengths are padded with zero rows first), *before* the transformer's text projection: the blend is
then an ordinary prompt embedding, its cross-attention keys/values are computed once for it by
``CausalWanTransformer.encode_prompt``, and nothing in the transformer changes.

Semantics, starting from Daydream Scope (``src/scope/core/pipelines/blending.py``):

* weights are normalised to sum 1 (the storyboard refuses non-positive ones);
* ``linear``: the weighted sum of the embeddings, rescaled so that its norm (over the whole tensor) is the
  weighted sum of their norms: averaging dissimilar embeddings would otherwise shrink the conditioning;
* ``slerp`` (two embeddings, weight ``t`` on the second): spherical interpolation per token row, falling back
  to a plain weighted sum when every row pair is nearly parallel (angle below 1e-4);
* a transition of ``N`` blocks is a blend of the previous prompt's conditioning and the new one's with weight
  ``t_k = (k + 1) / (N + 1)`` (:func:`longlive_cli.schedule.transition_weight`) on the new one in its k-th
  block (so neither end is repeated: the block before the transition has ``t = 0``, the block after it the
  new prompt itself). Scope walks
  ``linspace(0, 1, N)``, whose first step repeats the old conditioning; its temporal ``linear`` is a plain
  ``lerp``, here the same norm-keeping blend as for weighted texts.

Blends are computed in float32 on the embeddings' device and returned in their dtype.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from .storyboard import Segment

__all__ = ["blend", "segment_embedding", "slerp"]

EPSILON = 1e-8  # keeps divisions by a norm finite
PARALLEL = 1e-4  # below this angle (radians) for every row, slerp is a weighted sum


def _padded(embeds: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    rows = max(e.shape[1] for e in embeds)
    return [torch.nn.functional.pad(e.float(), (0, 0, 0, rows - e.shape[1])) for e in embeds]


def slerp(a: torch.Tensor, b: torch.Tensor, t: float) -> torch.Tensor:
    """Spherical interpolation between ``a`` and ``b`` (``[..., d]``, same shape) per row of the last axis,
    ``t`` in [0, 1] the weight of ``b``. Rows whose angle is ~0 everywhere give ``(1 - t) a + t b``."""
    a_unit = a / (a.norm(dim=-1, keepdim=True) + EPSILON)
    b_unit = b / (b.norm(dim=-1, keepdim=True) + EPSILON)
    omega = torch.acos((a_unit * b_unit).sum(dim=-1, keepdim=True).clamp(-1.0, 1.0))
    if bool((omega.abs() < PARALLEL).all()):
        return (1 - t) * a + t * b
    sin = torch.sin(omega)
    return torch.sin((1 - t) * omega) / (sin + EPSILON) * a + torch.sin(t * omega) / (sin + EPSILON) * b


def blend(embeds: Sequence[torch.Tensor], weights: Sequence[float], method: str = "linear") -> torch.Tensor:
    """One conditioning from several UMT5 embeddings ``[1, n_i, text_dim]`` and positive ``weights``.

    Returns ``[1, max n_i, text_dim]`` in the first embedding's dtype. One embedding returns itself (no copy).
    ``method``: ``linear`` (norm-keeping weighted sum) or ``slerp`` (exactly two embeddings).

    Raises:
        ValueError: no embeddings, a length mismatch, a non-positive weight sum, an unknown method, or slerp
            with other than two embeddings.
    """
    if not embeds or len(embeds) != len(weights):
        raise ValueError(f"blend needs one weight per embedding, got {len(embeds)} and {len(weights)}")
    if method not in ("linear", "slerp"):
        raise ValueError(f"unknown blend {method!r}; use linear or slerp")
    total = float(sum(weights))
    if not total > 0:
        raise ValueError(f"blend weights must sum to more than 0, got {list(weights)}")
    if len(embeds) == 1:
        return embeds[0]
    w = [float(x) / total for x in weights]
    padded = _padded(embeds)
    if method == "slerp":
        if len(embeds) != 2:
            raise ValueError(f"slerp blends two embeddings, got {len(embeds)}")
        out = slerp(padded[0], padded[1], w[1])
    else:
        out = sum((wi * e for wi, e in zip(w, padded, strict=True)), torch.zeros_like(padded[0]))
        target = sum(wi * e.norm() for wi, e in zip(w, padded, strict=True))
        norm = out.norm()
        if norm > EPSILON:
            out = out * (target / norm)
    return out.to(embeds[0].dtype)


def segment_embedding(segment: Segment, embeds: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """A storyboard segment's conditioning: its one text's embedding, or its weighted texts blended
    (``embeds``: text -> ``[1, n, text_dim]``).

    Raises:
        KeyError: a text of the segment has no embedding.
    """
    if len(segment.texts) == 1:
        return embeds[segment.texts[0]]
    return blend([embeds[t] for t, _ in segment.parts], [w for _, w in segment.parts], segment.blend)
