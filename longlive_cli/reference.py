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
