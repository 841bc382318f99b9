"""LongLive 2.0's KV cache: a frame sink, a local window, and a pinned shot sink per scene cut.

Source: NVlabs/LongLive ``main`` 7860ad9 ``wan_5b/modules/causal_model.py`` ``CausalWanSelfAttention.forward``
(lines 478-690: roll-and-insert with the effective sink, the pinned region, the window) and
``_apply_cache_updates`` (1371-1484), ``pipeline/causal_diffusion_inference.py`` ``_pin_current_chunk`` and
``_zero_kv_data`` (1017-1042). The official cache is a token buffer that is rolled (copied left) when it
overflows; this one keeps the same *ordered list of cached frames* without copying anything: each frame owns
a slot of fixed per-layer buffers, and attention reads the whole buffer (RoPE is applied before keys are
stored and the cached path has no positional mask, so the order of keys does not matter), with a key mask
while slots are empty.

The rules, in latent frames (``capacity`` 32, ``sink`` 8, ``global_sink`` = ``sink`` with the multi-shot sink,
else 0):

* **Effective sink** (the leading frames of the list a roll keeps): ``global_sink + pinned`` while the pinned
  shot sink sits right after the global sink; ``global_sink`` while it floats further on; ``max(global_sink,
  sink)`` with no pin.
* **A pass over new frames** (a block's first denoising step) that does not fit evicts, right after the
  effective sink, as many of the oldest frames as it needs; a floating pin moves towards the front with them.
  So a cut made once the window is full is protected only when it has moved up behind the global sink (three
  blocks later with 8-frame blocks), a cut at block 1 at once; a later cut replaces the previous shot sink.
* **A pass over frames already held** (the later steps, the clean pass, a re-cache) rewrites their slots.
* :meth:`pin` after a cut's clean pass makes that block the shot sink; :meth:`keep_global_sink` (official
  ``shot_clean_recache``) drops everything but the global sink before it.

Every pass attends to every cached frame, the pass's own included (bidirectional inside a block).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .rope import apply_rope

__all__ = ["ShotKVCache"]


@dataclass(frozen=True)
class ShotWrite:
    """One pass's plan: the slots its frames are written to, the token index of those slots (int64, on the
    cache's device) and the key mask of the valid slots (None when every slot is valid)."""

    slots: tuple[int, ...]
    token_index: torch.Tensor
    key_mask: torch.Tensor | None


class ShotKVCache:
    """Per-layer key/value buffers ``[B, capacity * tokens_per_frame, heads, head_dim]`` with LongLive 2.0's
    sink, window and shot-sink rules (see the module docs).

    Args:
        num_layers, batch_size, tokens_per_frame, heads, head_dim, dtype, device: buffer sizes.
        capacity: ``local_attn_size`` in latent frames (32).
        sink: ``sink_size`` in latent frames (8).
        multi_shot_sink: pin the first block of each shot (official ``multi_shot_sink``; the global sink is
        then
            ``sink`` frames, else 0).

    Raises:
        ValueError: sizes that cannot form a sink and a window.
    """

    relative_rope = False

    def __init__(
        self,
        *,
        num_layers: int,
        batch_size: int,
        tokens_per_frame: int,
        heads: int,
        head_dim: int,
        capacity: int = 32,
        sink: int = 8,
        multi_shot_sink: bool = True,
        dtype: torch.dtype = torch.float32,
        device: torch.device | str = "cpu",
    ) -> None:
        if not 0 <= sink < capacity:
            raise ValueError(f"the KV cache needs 0 <= sink < capacity, got sink {sink}, capacity {capacity}")
        self.capacity, self.sink, self.tokens_per_frame = capacity, sink, tokens_per_frame
        self.global_sink = sink if multi_shot_sink else 0
        shape = (batch_size, capacity * tokens_per_frame, heads, head_dim)
        self._k = [torch.zeros(shape, dtype=dtype, device=device) for _ in range(num_layers)]
        self._v = [torch.zeros(shape, dtype=dtype, device=device) for _ in range(num_layers)]
        self.device = torch.device(device)
        self.entries: list[tuple[int, int]] = []  # (latent frame, slot) in the official buffer's order
        self.pinned_start, self.pinned_len = -1, 0  # index into `entries` of the shot sink, and its length

    def frames(self) -> tuple[int, ...]:
        """The cached latent frames, in the official buffer's order (sinks first)."""
        return tuple(f for f, _ in self.entries)

    def effective_sink(self) -> int:
        """Leading entries a roll keeps (see the module docs)."""
        if self.pinned_start >= 0 and self.pinned_len > 0:
            if self.pinned_start == self.global_sink:
                return self.global_sink + self.pinned_len
            return self.global_sink
        return max(self.global_sink, self.sink)

    def protected(self) -> tuple[int, ...]:
        """The latent frames no roll evicts and a re-cache keeps: the effective sink and a floating pin."""
        keep = set(range(self.effective_sink()))
        if self.pinned_start >= 0:
            keep |= set(range(self.pinned_start, self.pinned_start + self.pinned_len))
        return tuple(self.entries[i][0] for i in sorted(keep) if i < len(self.entries))

    def assign(self, start_frame: int, num_frames: int) -> ShotWrite:
        """Book slots for latent frames ``start_frame ..`` (all held already, or all new: evict as needed).

        Raises:
            ValueError: frames partly held, or more new frames than the window beside the sinks holds.
        """
        frames = range(start_frame, start_frame + num_frames)
        held = dict(self.entries)
        if all(f in held for f in frames):
            slots = tuple(held[f] for f in frames)
        elif any(f in held for f in frames):
            raise ValueError(f"latent frames {start_frame}..{frames[-1]} are partly in the KV cache")
        else:
            slots = self._append(frames)
        t = self.tokens_per_frame
        index = torch.cat([torch.arange(s * t, (s + 1) * t) for s in slots]).to(self.device)
        mask = None
        if len(self.entries) < self.capacity:
            valid = torch.zeros(self.capacity, dtype=torch.bool)
            valid[[s for _, s in self.entries]] = True
            mask = valid.repeat_interleave(t).view(1, 1, 1, -1).to(self.device)
        return ShotWrite(slots, index, mask)

    def _append(self, frames: range) -> tuple[int, ...]:
        n, eff = len(frames), self.effective_sink()
        over = len(self.entries) + n - self.capacity
        if over > 0:
            if over > len(self.entries) - eff:
                raise ValueError(
                    f"{n} latent frames do not fit in a KV cache of {self.capacity} frames beside {eff} "
                    "sink frames"
                )
            floating = self.pinned_start >= eff and self.pinned_len > 0
            del self.entries[eff : eff + over]
            if floating:
                self.pinned_start -= over
        used = {s for _, s in self.entries}
        free = [s for s in range(self.capacity) if s not in used][:n]
        self.entries += list(zip(frames, free, strict=True))
        return tuple(free)

    def attend(self, layer: int, plan: ShotWrite, k, v, cos, sin):
        """Store the pass's keys (rotated by its RoPE tables) and values; return the whole buffer and the key
        mask of its valid slots."""
        k = apply_rope(k, cos, sin).to(self._k[layer].dtype)
        self._k[layer].index_copy_(1, plan.token_index, k)
        self._v[layer].index_copy_(1, plan.token_index, v.to(self._v[layer].dtype))
        return self._k[layer], self._v[layer], plan.key_mask

    def pin(self, num_frames: int) -> None:
        """Make the last ``num_frames`` cached frames (a cut's first block, after its clean pass) the shot
        sink
        (official ``_pin_current_chunk``: at most ``sink`` frames); replaces an earlier pin."""
        self.pinned_start, self.pinned_len = len(self.entries) - num_frames, min(self.sink, num_frames)

    def keep_global_sink(self) -> None:
        """Forget every frame but the global sink, and the pin (official ``_zero_kv_data``)."""
        del self.entries[self.global_sink :]
        self.pinned_start, self.pinned_len = -1, 0
