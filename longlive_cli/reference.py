"""The naive reference paths: recomputation with explicit attention masks and positions, no KV cache.

Absolute RoPE (:func:`naive_sample_video`): every transformer pass recomputes the whole video so far
(earlier blocks as clean x0 at timestep 0, the current block at its noise level) under a block-causal
mask with a frame sink and a local window. Rolling Forcing: :func:`naive_rolling_forcing`. Relative RoPE:
:func:`naive_relative_video` (explicit key lists at rank positions, no cache) and
:func:`shifting_relative_video` (the official code's shifting buffer, linear cost, for long runs). These are
what the cached samplers must equal for a single prompt; they hold every latent (and the naive ones cost
O(frames^2) or more per pass), so they are for tests and benchmarks only.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch

from .geometry import WAN21, Geometry
from .models.spec import SamplerConfig
from .models.transformer import CausalWanTransformer
from .samplers.base import NoiseStream, flow_schedule


def block_causal_mask(
    num_frames: int,
    tokens_per_frame: int,
    sampler_config: SamplerConfig,
    frames_per_block: int = WAN21.frames_per_block,
) -> torch.Tensor:
    """Boolean ``[S, S]`` mask (True = may attend) over ``num_frames`` latent frames.

    A query in block ``b`` (frames ``b*F .. (b+1)*F - 1``) sees key frame ``j`` when
    ``j < (b+1)*F`` and ``j`` is in the frame sink (``j < sink_size``) or among the last
    ``local_attn_size - sink_size`` frames up to its block's end. Inside a block, attention is
    bidirectional.
    """
    fpb, window = frames_per_block, sampler_config.local_attn_size - sampler_config.sink_size
    frame = torch.arange(num_frames)
    end = (frame // fpb + 1) * fpb  # exclusive end of each query frame's block
    q, k = end[:, None], frame[None, :]
    allowed = (k < q) & ((k < sampler_config.sink_size) | (k >= q - window))
    return allowed.repeat_interleave(tokens_per_frame, 0).repeat_interleave(tokens_per_frame, 1)


@torch.inference_mode()
def naive_sample_video(
    model: CausalWanTransformer,
    prompt_embeds: torch.Tensor,
    num_blocks: int,
    *,
    latent_height: int,
    latent_width: int,
    seed: int,
    sampler_config: SamplerConfig = SamplerConfig(),
    geometry: Geometry = WAN21,
) -> Iterator[torch.Tensor]:
    """Single-prompt generation by full recomputation; yields each block's x0 ``[1, F, 16, h, w]``.

    Uses the same schedule and noise stream as :func:`longlive_cli.samplers.longlive.sample_longlive`, so the
    two agree to floating-point error when the cache is right.
    """
    fpb = geometry.frames_per_block
    timesteps, sigmas = flow_schedule(sampler_config)
    shape = (1, fpb, geometry.latent_channels, latent_height, latent_width)
    noise = NoiseStream(seed, num_blocks=num_blocks, block_shape=shape)
    prompt = model.encode_prompt(prompt_embeds)
    tpf = model.tokens_per_frame(latent_height, latent_width)
    as_model: dict[str, Any] = {"device": model.device, "dtype": model.dtype}
    history = torch.zeros((1, 0, *shape[2:]), **as_model)
    for _ in range(num_blocks):
        n = history.shape[1] + fpb
        mask = block_causal_mask(n, tpf, sampler_config, fpb).to(model.device)
        x = noise.initial().to(**as_model)
        for i in range(len(timesteps)):
            t = torch.zeros(1, n, device=model.device)
            t[:, -fpb:] = timesteps[i]
            flow = model(torch.cat([history, x], dim=1), t, prompt, start_frame=0, attn_mask=mask)
            flow = flow[:, -fpb:]
            x0 = (x.double() - sigmas[i].double() * flow.double()).to(model.dtype)
            if i + 1 < len(timesteps):
                s = sigmas[i + 1].to(model.device)
                x = ((1 - s) * x0 + s * noise.step().to(**as_model)).to(model.dtype)
        history = torch.cat([history, x0], dim=1)
        yield x0


@torch.inference_mode()
def naive_rolling_forcing(
    model: CausalWanTransformer,
    prompt_embeds: torch.Tensor,
    num_blocks: int,
    *,
    latent_height: int,
    latent_width: int,
    seed: int,
    sampler_config: SamplerConfig,
    attention_frames: int = 21,
    geometry: Geometry = WAN21,
) -> Iterator[torch.Tensor]:
    """Rolling Forcing (docs/design.md "Rolling Forcing reference semantics") by recomputation, single prompt.

    Yields each block's final x0 ``[1, 3, 16, h, w]`` in block order. No cache: every window's pass is
    one uncached forward over an explicit list of key frames, each a (frame, latent, RoPE position):

    * every finished block ``c``'s clean x0 at its own frames ``g = 3c ..``, t = 0, its queries attending
      to the frames ``[max(0, 3c+3-21), 3c+3)`` of this list: what its clean pass saw (the sink at its
      true frames 0-2 while that range starts at 0), so these rows' keys/values are that block's cache
      entry, recomputed;
    * for a window from frame ``f > 0`` with ``q`` frames: block 0's clean x0 *again*, at RoPE frames
      ``f-W-3 .. f-W-1`` (``W = min(21-q-3, f-3)``), attending only to itself: block 0's clean pass
      attends only to itself, and RoPE scores depend only on frame differences, so these keys are the
      sink's keys (kept without RoPE) rotated to those frames;
    * the window's blocks at their noise levels and frames, attending to that sink copy, the ``W``
      finished frames before ``f`` and the window (windows anchored at block 0: the window only).

    Noise: one generator, ``[1, L, 16, h, w]`` in one draw, then per window, for each block below the
    last step in block order, a ``[3n, 16, h, w]`` draw whose block frames re-noise it. O(L^2) per pass and
    every latent held: for tests only.
    """
    fpb, steps = geometry.frames_per_block, len(sampler_config.denoising_steps)
    timesteps, sigmas = flow_schedule(sampler_config)
    gen = torch.Generator().manual_seed(seed)
    initial = torch.randn(
        1, num_blocks * fpb, geometry.latent_channels, latent_height, latent_width, generator=gen
    )
    prompt = model.encode_prompt(prompt_embeds)
    tpf = model.tokens_per_frame(latent_height, latent_width)
    as_model: dict[str, Any] = {"device": model.device, "dtype": model.dtype}
    state = {b: initial[:, b * fpb : (b + 1) * fpb].to(**as_model) for b in range(num_blocks)}
    final: list[torch.Tensor] = []  # every finished block's x0
    for w in range(num_blocks + steps - 1):
        blocks = list(range(max(0, w - steps + 1), min(num_blocks - 1, w) + 1))
        f, q = blocks[0] * fpb, len(blocks) * fpb
        frames: list[tuple[torch.Tensor, float, int]] = []  # (latent [1, 1, C, h, w], timestep, RoPE frame)
        sees: list[set[int]] = []  # per frame of the list: the frames of the list it attends to
        if f > 0:
            for g in range(f):  # finished blocks, clean
                frames.append((final[g // fpb][:, g % fpb : g % fpb + 1], 0.0, g))
                end = (g // fpb + 1) * fpb
                sees.append(set(range(max(0, end - attention_frames), end)))
            cap = max(0, min(attention_frames - q - fpb, f - fpb))
            for i in range(fpb):  # the sink, placed before the W frames the window sees
                frames.append((final[0][:, i : i + 1], 0.0, f - cap - fpb + i))
                sees.append(set(range(f, f + fpb)))
            window_sees = set(range(f - cap, f + fpb + q))
        else:
            window_sees = set(range(q))
        for b in blocks:
            for i in range(fpb):
                frames.append((state[b][:, i : i + 1], timesteps[w - b].item(), b * fpb + i))
                sees.append(window_sees)
        n = len(frames)
        allowed = torch.tensor([[j in sees[i] for j in range(n)] for i in range(n)])
        mask = allowed.repeat_interleave(tpf, 0).repeat_interleave(tpf, 1).to(model.device)
        x = torch.cat([latent for latent, _, _ in frames], dim=1)
        t = torch.tensor([[ts for _, ts, _ in frames]], dtype=torch.float32, device=model.device)
        positions = tuple(p for _, _, p in frames)
        flow = model(x, t, prompt, start_frame=0, attn_mask=mask, frame_positions=positions)[:, -q:]
        xt = x[:, -q:]
        sigma = torch.cat([sigmas[w - b].repeat(fpb) for b in blocks]).double().view(1, -1, 1, 1, 1)
        x0 = (xt.double() - sigma.to(model.device) * flow.double()).to(model.dtype)
        for i, b in enumerate(blocks):
            if w - b < steps - 1:
                eps = torch.randn(q, *initial.shape[2:], generator=gen).unsqueeze(0).to(**as_model)
                s = sigmas[w - b + 1].to(model.device)
                state[b] = ((1 - s) * x0 + s * eps).to(model.dtype)[:, i * fpb : (i + 1) * fpb]
        if w >= steps - 1:
            final.append(x0[:, :fpb])
            yield final[-1]


def visible_frames(end: int, sampler_config: SamplerConfig) -> tuple[int, ...]:
    """Latent frames a pass whose frames end at ``end`` (exclusive) attends to, in frame order, with one
    prompt: the sink (frames ``0 .. sink_size-1``) and the latest ``local_attn_size - sink_size`` frames up to
    ``end``. With relative RoPE a frame's temporal index in that pass is its position in this tuple (its
    rank)."""
    ring = sampler_config.local_attn_size - sampler_config.sink_size
    return tuple(sorted(set(range(min(sampler_config.sink_size, end))) | set(range(max(0, end - ring), end))))


@torch.inference_mode()
def naive_relative_video(
    model: CausalWanTransformer,
    prompt_embeds: torch.Tensor,
    num_blocks: int,
    *,
    latent_height: int,
    latent_width: int,
    seed: int,
    sampler_config: SamplerConfig = SamplerConfig(rope="relative"),
    geometry: Geometry = WAN21,
) -> Iterator[torch.Tensor]:
    """Single-prompt LongLive with relative RoPE (docs/design.md "Relative RoPE reference semantics") by
    recomputation, without a cache; yields each block's x0 ``[1, F, 16, h, w]``.

    Every pass is one uncached forward over an explicit list of rows (a latent frame, its timestep, its
    temporal RoPE position) with an explicit mask. A pass of block ``c`` attends to the frames
    :func:`visible_frames` lists, each at its rank. A cached frame's keys and values are those of the clean
    pass of its block ``d``, rotated to the frame's rank in *this* pass; as RoPE scores depend only on
    position differences, they are recomputed by a copy of ``d``'s whole clean pass (its own rows and,
    recursively, the copies its pass attended to) with every position shifted by the difference between
    the frame's rank here and its rank in ``d``'s pass. Positions may be negative (RoPE of any integer,
    :meth:`CausalWanTransformer.rope_at`). The number of rows grows about 1.6x per block (the pass of block
    ``c`` holds copies of blocks 0, ``c-2`` and ``c-1``): for tests of a few blocks only.
    """
    fpb = geometry.frames_per_block
    timesteps, sigmas = flow_schedule(sampler_config)
    shape = (1, fpb, geometry.latent_channels, latent_height, latent_width)
    noise = NoiseStream(seed, num_blocks=num_blocks, block_shape=shape)
    prompt = model.encode_prompt(prompt_embeds)
    tpf = model.tokens_per_frame(latent_height, latent_width)
    as_model: dict[str, Any] = {"device": model.device, "dtype": model.dtype}
    final: list[torch.Tensor] = []  # every finished block's x0

    def ranks(block: int) -> dict[int, int]:
        return {f: r for r, f in enumerate(visible_frames((block + 1) * fpb, sampler_config))}

    def add_pass(rows: list, block: int, shift: int, own: torch.Tensor, t: float) -> list[int]:
        """Append the rows of block ``block``'s pass over latents ``own`` at timestep ``t`` with positions
        shifted by ``shift`` (and the copies it needs before them); return the indices of its own rows."""
        rank = ranks(block)
        first = block * fpb
        keys: list[int] = []
        for d in sorted({f // fpb for f in rank if f < first}):
            d_rank = ranks(d)
            seen = [f for f in range(d * fpb, (d + 1) * fpb) if f in rank]
            offsets = {rank[f] - d_rank[f] for f in seen}
            assert len(offsets) == 1, "a block's frames keep their spacing"
            d_rows = add_pass(rows, d, shift + offsets.pop(), final[d], 0.0)
            keys += [d_rows[f - d * fpb] for f in seen]
        mine = list(range(len(rows), len(rows) + fpb))
        for i in range(fpb):
            rows.append((own[:, i : i + 1], t, shift + rank[first + i], keys + mine))
        return mine

    for c in range(num_blocks):
        x = noise.initial().to(**as_model)
        for i in range(len(timesteps)):  # the clean pass is recomputed inside later passes (at t = 0)
            rows: list = []
            add_pass(rows, c, 0, x, float(timesteps[i]))
            n = len(rows)
            allowed = torch.zeros(n, n, dtype=torch.bool)
            for r, (_, _, _, sees) in enumerate(rows):
                allowed[r, sees] = True
            mask = allowed.repeat_interleave(tpf, 0).repeat_interleave(tpf, 1).to(model.device)
            latents = torch.cat([row[0] for row in rows], dim=1)
            t = torch.tensor([[row[1] for row in rows]], dtype=torch.float32, device=model.device)
            positions = tuple(row[2] for row in rows)
            flow = model(latents, t, prompt, start_frame=0, attn_mask=mask, frame_positions=positions)
            x0 = (x.double() - sigmas[i].double() * flow[:, -fpb:].double()).to(model.dtype)
            if i + 1 < len(timesteps):
                s = sigmas[i + 1].to(model.device)
                x = ((1 - s) * x0 + s * noise.step().to(**as_model)).to(model.dtype)
        final.append(x0)
        yield x0


@dataclass(frozen=True)
class _ShiftPlan:
    query_positions: tuple[int, ...]  # buffer position of each of the pass's frames
    keep: tuple[int, ...]  # buffer positions kept from before the pass, in order
    slots: tuple[int, ...]  # where the pass's frames go in the new buffer
    key_rope: tuple[torch.Tensor, torch.Tensor]  # cos/sin at positions 0 .. len - 1


class ShiftingRelativeCache:
    """Relative RoPE in the official code's data layout (``causal_model_infinity.py``), for tests: one buffer
    per layer holding unrotated keys of the cached frames *in frame order*; a pass that does not fit drops the
    oldest non-sink frames and shifts the rest left; the temporal index of a key is its position in the
    buffer. An :class:`~longlive_cli.models.kv_cache.AttentionCache` (``relative_rope``), single prompt, no
    re-cache. It copies the whole buffer every pass: O(window) per pass, no ring.
    """

    relative_rope = True

    def __init__(
        self, model: CausalWanTransformer, height: int, width: int, sampler_config: SamplerConfig
    ) -> None:
        self.capacity, self.sink = sampler_config.local_attn_size, sampler_config.sink_size
        self.tpf = model.tokens_per_frame(height, width)
        self.grid = (height // model.patch_size[1], width // model.patch_size[2])
        self.rope_at = model.rope_at
        self.frames: list[int] = []
        self.k: dict[int, torch.Tensor] = {}
        self.v: dict[int, torch.Tensor] = {}

    def assign(self, start_frame: int, num_frames: int) -> Any:
        own = list(range(start_frame, start_frame + num_frames))
        new = [f for f in own if f not in self.frames]
        overflow = max(0, len(self.frames) + len(new) - self.capacity)
        dropped = set(self.frames[self.sink : self.sink + overflow])
        kept = [i for i, f in enumerate(self.frames) if f not in dropped]
        self.frames = [self.frames[i] for i in kept] + new
        slots = tuple(self.frames.index(f) for f in own)
        return _ShiftPlan(slots, tuple(kept), slots, self.rope_at(tuple(range(len(self.frames))), *self.grid))

    def attend(self, layer: int, plan: Any, k, v, cos, sin):
        from .models.rope import apply_rope

        tpf = self.tpf
        old_k, old_v = self.k.get(layer), self.v.get(layer)
        parts_k = [old_k[:, i * tpf : (i + 1) * tpf] for i in plan.keep] if old_k is not None else []
        parts_v = [old_v[:, i * tpf : (i + 1) * tpf] for i in plan.keep] if old_v is not None else []
        for i, slot in enumerate(plan.slots):  # the pass's frames: replace a held frame, or append
            chunk_k, chunk_v = k[:, i * tpf : (i + 1) * tpf], v[:, i * tpf : (i + 1) * tpf]
            if slot < len(parts_k):
                parts_k[slot], parts_v[slot] = chunk_k, chunk_v
            else:
                parts_k.append(chunk_k)
                parts_v.append(chunk_v)
        self.k[layer], self.v[layer] = torch.cat(parts_k, dim=1), torch.cat(parts_v, dim=1)
        return apply_rope(self.k[layer], *plan.key_rope), self.v[layer], None


@torch.inference_mode()
def shifting_relative_video(
    model: CausalWanTransformer,
    prompt_embeds: torch.Tensor,
    num_blocks: int,
    *,
    latent_height: int,
    latent_width: int,
    seed: int,
    sampler_config: SamplerConfig = SamplerConfig(rope="relative"),
    geometry: Geometry = WAN21,
) -> Iterator[torch.Tensor]:
    """Single-prompt LongLive with relative RoPE as the official infinity pipeline runs it (NVlabs/LongLive
    ``pipeline/causal_inference.py`` with ``causal_model_infinity.py``): 4 steps and a clean pass per block,
    the same noise stream, a :class:`ShiftingRelativeCache`. Yields each block's x0 ``[1, F, 16, h, w]``.
    Linear cost, so it checks long runs (past 1024 latent frames) that :func:`naive_relative_video` cannot."""
    fpb = geometry.frames_per_block
    timesteps, sigmas = flow_schedule(sampler_config)
    shape = (1, fpb, geometry.latent_channels, latent_height, latent_width)
    noise = NoiseStream(seed, num_blocks=num_blocks, block_shape=shape)
    prompt = model.encode_prompt(prompt_embeds)
    cache = ShiftingRelativeCache(model, latent_height, latent_width, sampler_config)
    as_model: dict[str, Any] = {"device": model.device, "dtype": model.dtype}
    zero = torch.zeros(1, device=model.device)
    for b in range(num_blocks):
        x = noise.initial().to(**as_model)
        for i in range(len(timesteps)):
            flow = model(x, timesteps[i : i + 1], prompt, start_frame=b * fpb, cache=cache)
            x0 = (x.double() - sigmas[i].double() * flow.double()).to(model.dtype)
            if i + 1 < len(timesteps):
                s = sigmas[i + 1].to(model.device)
                x = ((1 - s) * x0 + s * noise.step().to(**as_model)).to(model.dtype)
        model(x0, zero, prompt, start_frame=b * fpb, cache=cache)
        yield x0
