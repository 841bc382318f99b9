"""Self-attention KV cache with a frame sink and a local window (LongLive §3.2, "frame sink").

The cache holds keys and values for at most ``capacity_frames`` latent frames per layer: the
first ``sink_frames`` frames written after a clear (the *frame sink*, never evicted) and a ring of
the latest ``capacity_frames - sink_frames`` frames (the *local window*). Writing a frame that
does not fit evicts the oldest non-sink frame by overwriting its slot in place, so nothing is ever
copied or rolled and memory does not depend on video length.

Slots are ordered sink first, then ring slots in the order they were filled. Attention does not
depend on the order of keys (RoPE is applied before keys are stored and the cached path has no
mask), so the ring never needs re-ordering. Reference: NVlabs/LongLive v1.0
``wan/modules/causal_model.py`` (``CausalWanSelfAttention.forward``, rolling cache with
``sink_size`` and ``max_attention_size``), whose eviction order this reproduces: the first
eviction, when the block starting at latent frame 12 is written, drops frames 3-5.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import torch

from .rope import apply_rope


class AttentionCache(Protocol):
    """What the cached self-attention processor talks to: one pass's key/value source and sink.

    :meth:`assign` is called once per transformer pass, before any layer runs, with the pass's
    frames; its result (the pass's *plan*) is handed back to :meth:`attend`, which each layer calls
    with its keys *before* RoPE, its values and the RoPE tables of the pass's own frames. The cache
    decides what to store (rotated or not) and returns the keys/values to attend to and an optional
    boolean key mask ``[1, 1, 1, keys]`` (True = attend). :class:`KVCache` is LongLive's; Rolling
    Forcing's cache (:mod:`longlive_cli.samplers.rolling_forcing`) keeps a sink without RoPE and
    rotates it to a new position in every pass; :class:`RelativeKVCache` (relative RoPE) stores keys
    without RoPE and rotates all of them at attention time.

    An optional class attribute ``relative_rope`` (absent or False: the transformer places the pass's
    queries at their latent frames; True: at the plan's ``query_positions``, one temporal RoPE index per
    frame of the pass).
    """

    def assign(self, start_frame: int, num_frames: int) -> Any: ...

    def attend(
        self,
        layer: int,
        plan: Any,
        k: torch.Tensor,
        v: torch.Tensor,
        cos: torch.Tensor,
        sin: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]: ...


@dataclass(frozen=True)
class CacheWrite:
    """Where one forward pass writes its frames and what it then attends to.

    ``frame_slots[i]`` is the slot of the pass's i-th latent frame; after writing, slots
    ``0 .. num_valid - 1`` hold valid keys/values and are all attended to.

    Static caches only: ``token_index`` (int64 ``[F * tokens_per_frame]``, on the cache's device)
    gives the cache token each of the pass's tokens is written to; ``key_mask`` (bool
    ``[1, 1, 1, capacity_frames * tokens_per_frame]``, True = attend) hides the empty slots while
    the cache is filling and is None once it is full.
    """

    frame_slots: tuple[int, ...]
    num_valid: int
    token_index: torch.Tensor | None = None
    key_mask: torch.Tensor | None = None


class KVCache:
    """Bounded per-layer key/value buffers for the causal transformer.

    Each layer has its own key and value buffer, ``[B, capacity_frames * tokens_per_frame, heads, head_dim]``
    (keys after RoPE); :attr:`k` and :attr:`v` stack them for inspection. ``slot_frames`` lists the absolute
    latent frame held by each slot (``-1``: empty).

    Args:
        num_layers: transformer blocks (30 for Wan2.1-1.3B).
        batch_size: videos generated together.
        tokens_per_frame: tokens per latent frame after patchify, ``(h/2)*(w/2)`` (1560 at 832x480).
        heads, head_dim: attention heads and channels per head (12, 128 for Wan2.1-1.3B).
        capacity_frames: ``local_attn_size`` in latent frames (12 in LongLive).
        sink_frames: ``sink_size`` in latent frames (3 in LongLive); must be < capacity_frames.
        static: read the whole buffer every pass (with :attr:`CacheWrite.key_mask` over empty
            slots) and write through a device index, so every pass has the same shapes and no
            Python-int slicing (``torch.compile``/CUDA graphs). Same attention result: masked keys
            get zero weight. The index tensors and masks are built once per slot pattern.

    Raises:
        ValueError: for sizes that cannot form a sink + window.
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
        capacity_frames: int = 12,
        sink_frames: int = 3,
        dtype: torch.dtype = torch.float32,
        device: torch.device | str = "cpu",
        static: bool = False,
    ) -> None:
        if capacity_frames < 1 or not 0 <= sink_frames < capacity_frames:
            raise ValueError(
                f"KV cache needs 0 <= sink_frames < capacity_frames, got sink {sink_frames}, "
                f"capacity {capacity_frames}"
            )
        self.capacity_frames = capacity_frames
        self.sink_frames = sink_frames
        self.tokens_per_frame = tokens_per_frame
        shape = (batch_size, capacity_frames * tokens_per_frame, heads, head_dim)
        # One buffer per layer (transformers' StaticCache pattern): a compiled in-place write into one
        # [layers, ...] buffer is functionalized into a full-size temporary per layer (+3.45 GB at 832x480).
        self._k = [torch.zeros(shape, dtype=dtype, device=device) for _ in range(num_layers)]
        self._v = [torch.zeros(shape, dtype=dtype, device=device) for _ in range(num_layers)]
        self.slot_frames: list[int] = [-1] * capacity_frames
        self._first_frame: int | None = None  # first frame written since the last clear
        self.static = static
        if static:
            # Fixed addresses let torch.compile's CUDA graphs (mode="reduce-overhead") treat the
            # in-place cache writes as mutations of static inputs (as transformers' StaticCache does).
            # guard=False: with a guard (the default up to torch 2.8) every new cache recompiles the graphs.
            for buffer in (*self._k, *self._v):
                torch._dynamo.mark_static_address(buffer, guard=False)
        self._token_index: dict[tuple[int, ...], torch.Tensor] = {}  # static: per slot pattern
        self._key_mask: dict[int, torch.Tensor] = {}  # static: per number of valid slots

    @property
    def k(self) -> torch.Tensor:
        """All layers' keys stacked, ``[num_layers, B, capacity_frames * tokens_per_frame, heads, head_dim]``
        (a copy, for inspection; the cache keeps one buffer per layer)."""
        return torch.stack(self._k)

    @property
    def v(self) -> torch.Tensor:
        """All layers' values stacked, as :attr:`k`."""
        return torch.stack(self._v)

    @property
    def ring_frames(self) -> int:
        """Latent frames in the local window beside the sink."""
        return self.capacity_frames - self.sink_frames

    def clear(self) -> None:
        """Forget every frame; the next frames written become the new sink.

        Buffers are not zeroed: empty slots are never attended to.
        """
        self.slot_frames = [-1] * self.capacity_frames
        self._first_frame = None

    def sink(self) -> tuple[int, ...]:
        """Absolute latent frames currently held as the frame sink."""
        return tuple(f for f in self.slot_frames[: self.sink_frames] if f >= 0)

    def frames(self) -> tuple[int, ...]:
        """Absolute latent frames currently held, sorted."""
        return tuple(sorted(f for f in self.slot_frames if f >= 0))

    def slot_of(self, frame: int) -> int:
        """Slot that latent frame ``frame`` occupies (or would occupy) given the current sink."""
        first = frame if self._first_frame is None else self._first_frame
        if frame < first:
            raise ValueError(f"latent frame {frame} precedes the cache's first frame {first}")
        offset = frame - first
        if offset < self.sink_frames:
            return offset
        return self.sink_frames + (offset - self.sink_frames) % self.ring_frames

    def assign(self, start_frame: int, num_frames: int) -> CacheWrite:
        """Book slots for latent frames ``start_frame .. start_frame + num_frames - 1``.

        Frames already held keep their slots (a later pass over the same frames overwrites them);
        new frames evict the oldest non-sink frame in their ring slot. Call once per forward pass,
        then write every layer with :meth:`write`.

        Raises:
            ValueError: if the frames do not fit in the window (``num_frames > ring_frames`` once
                the sink is full) or come before the sink.
        """
        if self._first_frame is None:
            self._first_frame = start_frame
        slots = tuple(self.slot_of(start_frame + i) for i in range(num_frames))
        if len(set(slots)) != len(slots):
            raise ValueError(
                f"{num_frames} latent frames from {start_frame} do not fit in a KV cache of "
                f"{self.capacity_frames} frames with a {self.sink_frames}-frame sink"
            )
        for i, slot in enumerate(slots):
            self.slot_frames[slot] = start_frame + i
        num_valid = sum(f >= 0 for f in self.slot_frames)
        # Slots fill in order, so the valid ones are always a prefix: attention reads a plain slice.
        assert all(f >= 0 for f in self.slot_frames[:num_valid])
        if not self.static:
            return CacheWrite(frame_slots=slots, num_valid=num_valid)
        return CacheWrite(slots, num_valid, self._index_for(slots), self._mask_for(num_valid))

    def _index_for(self, slots: tuple[int, ...]) -> torch.Tensor:
        if slots not in self._token_index:
            tpf = self.tokens_per_frame
            index = torch.cat([torch.arange(s * tpf, (s + 1) * tpf) for s in slots])
            self._token_index[slots] = index.to(self._k[0].device)
        return self._token_index[slots]

    def _mask_for(self, num_valid: int) -> torch.Tensor | None:
        if num_valid == self.capacity_frames:
            return None
        if num_valid not in self._key_mask:
            mask = (
                torch.arange(self.capacity_frames * self.tokens_per_frame) < num_valid * self.tokens_per_frame
            )
            self._key_mask[num_valid] = mask.view(1, 1, 1, -1).to(self._k[0].device)
        return self._key_mask[num_valid]

    def write(self, layer: int, plan: CacheWrite, k: torch.Tensor, v: torch.Tensor) -> None:
        """Store one layer's keys/values ``[B, num_frames * tokens_per_frame, heads, head_dim]``."""
        if plan.token_index is not None:
            self._k[layer].index_copy_(1, plan.token_index, k)
            self._v[layer].index_copy_(1, plan.token_index, v)
            return
        tpf = self.tokens_per_frame
        for i, slot in enumerate(plan.frame_slots):
            # Consecutive frames usually land in consecutive slots; a per-frame copy keeps it simple.
            self._k[layer][:, slot * tpf : (slot + 1) * tpf] = k[:, i * tpf : (i + 1) * tpf]
            self._v[layer][:, slot * tpf : (slot + 1) * tpf] = v[:, i * tpf : (i + 1) * tpf]

    def attend(
        self,
        layer: int,
        plan: CacheWrite,
        k: torch.Tensor,
        v: torch.Tensor,
        cos: torch.Tensor,
        sin: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """:class:`AttentionCache` for LongLive: rotate the pass's keys (``[B, F * tokens_per_frame,
        heads, head_dim]``, before RoPE) by ``cos``/``sin``, store them with the values, and return
        :meth:`read` with ``plan.key_mask`` (static caches: hides empty slots; None when full)."""
        k = apply_rope(k, cos, sin)
        self.write(layer, plan, k, v)
        keys, values = self.read(layer, plan)
        return keys, values, plan.key_mask

    def read(self, layer: int, plan: CacheWrite) -> tuple[torch.Tensor, torch.Tensor]:
        """Keys and values ``[B, num_valid * tokens_per_frame, heads, head_dim]`` to attend to (views).

        Static caches return the whole buffer, ``[B, capacity_frames * tokens_per_frame, heads,
        head_dim]``; attend with ``plan.key_mask``.
        """
        if self.static:
            return self._k[layer], self._v[layer]
        end = plan.num_valid * self.tokens_per_frame
        return self._k[layer][:, :end], self._v[layer][:, :end]


@dataclass(frozen=True)
class RelativeWrite(CacheWrite):
    """A :class:`CacheWrite` of a :class:`RelativeKVCache`: also the RoPE positions of the pass.

    ``query_positions``: the temporal RoPE index of each of the pass's frames (its rank in the cache).
    ``key_cos``/``key_sin``: RoPE tables ``[1, keys, 1, head_dim]`` for the keys :meth:`KVCache.read` returns,
    in slot order, each slot at its frame's rank (static caches: every slot; empty ones at 0, masked).
    """

    query_positions: tuple[int, ...] = ()
    key_cos: torch.Tensor | None = None
    key_sin: torch.Tensor | None = None


class RelativeKVCache(KVCache):
    """The sink + window KV cache with relative RoPE (docs/design.md "Relative RoPE reference semantics";
    NVlabs/LongLive ``wan/modules/causal_model_infinity.py``, "block-relativistic RoPE").

    Same slots, eviction and re-cache behaviour as :class:`KVCache`, but keys are stored **without** RoPE, and
    every pass rotates what it attends to by *rank*: the frames held, sorted (the sink first, then the window
    in frame order), are at temporal positions ``0, 1, 2, ...``; a key gets its frame's rank, and the pass's
    queries theirs (:attr:`RelativeWrite.query_positions`, which ``CausalWanTransformer.forward`` uses for the
    query tables). Once the cache is full, the current block is at ranks 9-11 however late it is, so there is
    no RoPE table to run out of. While the cache has held frames ``0 .. n-1`` since it was cleared (the first
    12 frames of a video), ranks equal frame numbers and the result equals :class:`KVCache`'s bit for bit.

    The ring keeps :class:`KVCache`'s slot order (slots are reused in place); a slot's rank comes from the
    frame it holds, never from its position in the buffer. Rotating the whole cache costs one elementwise
    rotation of at most ``capacity_frames`` frames of keys per layer and pass (not the pass's frames only),
    and a rotated copy of one layer's keys at a time; nothing grows with the video.

    Args:
        rope_at: ``positions -> (cos, sin)``, RoPE tables ``[1, len(positions) * tokens_per_frame, 1,
            head_dim]`` for frames at those temporal positions (``CausalWanTransformer.rope_at``).
        others: as :class:`KVCache`.
    """

    relative_rope = True

    def __init__(
        self, *, rope_at: Callable[[tuple[int, ...]], tuple[torch.Tensor, torch.Tensor]], **kwargs: Any
    ):
        super().__init__(**kwargs)
        self._rope_at = rope_at

    def ranks(self) -> dict[int, int]:
        """Each held latent frame's temporal RoPE index: its rank among the held frames (sorted)."""
        return {frame: rank for rank, frame in enumerate(self.frames())}

    def assign(self, start_frame: int, num_frames: int) -> RelativeWrite:
        """:meth:`KVCache.assign`, plus the ranks of the pass's frames and the key tables for this pass.

        Raises:
            ValueError: as :meth:`KVCache.assign`.
        """
        write = super().assign(start_frame, num_frames)
        rank = self.ranks()
        queries = tuple(rank[start_frame + i] for i in range(num_frames))
        slots = self.slot_frames if self.static else self.slot_frames[: write.num_valid]
        key_cos, key_sin = self._rope_at(tuple(rank.get(frame, 0) for frame in slots))
        device = self._k[0].device
        return RelativeWrite(
            frame_slots=write.frame_slots,
            num_valid=write.num_valid,
            token_index=write.token_index,
            key_mask=write.key_mask,
            query_positions=queries,
            key_cos=key_cos.to(device),
            key_sin=key_sin.to(device),
        )

    def attend(
        self,
        layer: int,
        plan: CacheWrite,
        k: torch.Tensor,
        v: torch.Tensor,
        cos: torch.Tensor,
        sin: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """:class:`AttentionCache` with relative RoPE: store the pass's keys (``[B, F * tokens_per_frame,
        heads, head_dim]``, before RoPE) and values as they are, then return every cached key rotated to its
        frame's rank (``plan.key_cos``/``key_sin``), the values, and ``plan.key_mask``. ``cos``/``sin`` (the
        queries' tables) are not needed: the pass's own keys are among the cached ones."""
        assert isinstance(plan, RelativeWrite) and plan.key_cos is not None and plan.key_sin is not None
        self.write(layer, plan, k, v)
        keys, values = self.read(layer, plan)
        return apply_rope(keys, plan.key_cos, plan.key_sin), values, plan.key_mask
