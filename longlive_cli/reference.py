"""The naive reference path: full recomputation with an explicit attention mask, no KV cache.

Every transformer pass recomputes the whole video so far (earlier blocks as clean x0 at
timestep 0, the current block at its noise level) under a block-causal mask with a frame sink
and a local window. This is what the cached sampler must equal for a single prompt; it costs
O(frames^2) per pass and holds every latent, so it is for tests and benchmarks only.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch

from .geometry import WAN21, Geometry
from .models.spec import SamplerConfig
from .models.transformer import CausalWanTransformer
from .samplers.base import NoiseStream, flow_schedule


def block_causal_mask(
    num_frames: int, tokens_per_frame: int, cfg: SamplerConfig, frames_per_block: int = WAN21.frames_per_block
) -> torch.Tensor:
    """Boolean ``[S, S]`` mask (True = may attend) over ``num_frames`` latent frames.

    A query in block ``b`` (frames ``b*F .. (b+1)*F - 1``) sees key frame ``j`` when
    ``j < (b+1)*F`` and ``j`` is in the frame sink (``j < sink_size``) or among the last
    ``local_attn_size - sink_size`` frames up to its block's end. Inside a block, attention is
    bidirectional.
    """
    fpb, window = frames_per_block, cfg.local_attn_size - cfg.sink_size
    frame = torch.arange(num_frames)
    end = (frame // fpb + 1) * fpb  # exclusive end of each query frame's block
    q, k = end[:, None], frame[None, :]
    allowed = (k < q) & ((k < cfg.sink_size) | (k >= q - window))
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
    cfg: SamplerConfig = SamplerConfig(),
    geometry: Geometry = WAN21,
) -> Iterator[torch.Tensor]:
    """Single-prompt generation by full recomputation; yields each block's x0 ``[1, F, 16, h, w]``.

    Uses the same schedule and noise stream as :func:`longlive_cli.samplers.longlive.sample_longlive`, so the
    two agree to floating-point error when the cache is right.
    """
    fpb = geometry.frames_per_block
    timesteps, sigmas = flow_schedule(cfg)
    shape = (1, fpb, geometry.latent_channels, latent_height, latent_width)
    noise = NoiseStream(seed, num_blocks=num_blocks, block_shape=shape)
    prompt = model.encode_prompt(prompt_embeds)
    tpf = model.tokens_per_frame(latent_height, latent_width)
    as_model: dict[str, Any] = {"device": model.device, "dtype": model.dtype}
    history = torch.zeros((1, 0, *shape[2:]), **as_model)
    for _ in range(num_blocks):
        n = history.shape[1] + fpb
        mask = block_causal_mask(n, tpf, cfg, fpb).to(model.device)
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
    cfg: SamplerConfig,
    attention_frames: int = 21,
    geometry: Geometry = WAN21,
) -> Iterator[torch.Tensor]:
    """Rolling Forcing (DESIGN.md "Rolling Forcing reference semantics") by recomputation, single prompt.

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
    fpb, steps = geometry.frames_per_block, len(cfg.denoising_steps)
    timesteps, sigmas = flow_schedule(cfg)
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
