"""LongLive 2.0's block sampler: 8-latent-frame blocks, a fresh flow-UniPC run per block, a clean pass.

Source: NVlabs/LongLive ``main`` 7860ad9 ``pipeline/causal_diffusion_inference.py`` (``_inference_inner``:
the block loop at lines 532-699, the solver at 892-913), ``configs/inference.yaml`` and
``inference.py:606-609``
(the noise). DESIGN.md "LongLive 2.0 reference semantics" lists the rules. Per block ``b`` (latent frames
``8b .. 8b + 7``):

1. the block's noise is its slice of one ``randn([1, F, 48, h, w])`` for the whole video (drawn here block by
   block from one CPU generator seeded with the seed: per-block draws concatenate to the one-shot draw);
2. a fresh :class:`~longlive_cli.samplers.unipc.FlowUniPC` (4 steps, shift 5): the model sees the int
timesteps
   999, 937, 833, 624 (as floats) and predicts the flow; the solver steps the sample with its float sigmas;
   nothing is re-noised; the block's result is the last step's output (its x0);
3. one clean pass of that x0 at timestep 0 writes the block's keys/values into the KV cache: 32 latent frames
   (``local_attn_size``) with a frame sink of 8 (``sink_size``); queries attend to the whole valid cache,
   bidirectional inside the block.

A prompt switch without a cut (the official 2.0 has none; this project's addition) re-caches as LongLive 1.0
does (:func:`~longlive_cli.samplers.longlive.recache`): the cached frames are re-encoded under the new prompt
at
timestep 0, the sink keeping its keys once the window has moved past it.

Latents are ``[1, F, 48, h, w]`` (batch, latent frames, channels, height/16, width/16).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import torch

from ..geometry import WAN22, Geometry
from ..models.spec import SamplerConfig
from ..runtime import StageTimes, stage
from ..schedule import PromptSchedule, conditioning
from .base import SampledBlock
from .longlive import recache
from .unipc import FlowUniPC, flow_unipc_grid

if TYPE_CHECKING:
    from ..models.transformer import CausalWanTransformer

__all__ = ["sample_longlive2"]

#: LongLive 2.0's sampler settings (``configs/inference.yaml``).
LONGLIVE2 = SamplerConfig(
    name="longlive2", local_attn_size=32, sink_size=8, sampling_steps=4, timestep_shift=5.0
)


@torch.inference_mode()
def sample_longlive2(
    model: CausalWanTransformer,
    schedule: PromptSchedule,
    *,
    latent_height: int,
    latent_width: int,
    seed: int,
    cfg: SamplerConfig = LONGLIVE2,
    geometry: Geometry = WAN22,
    times: StageTimes | None = None,
) -> Iterator[SampledBlock]:
    """Generate a video block by block, yielding each block's x0 latents ``[1, 8, 48, h, w]`` when done.

    Args:
        model: the causal transformer (its dtype/device are used throughout).
        schedule: which prompt each block uses; a change of segment is an in-shot switch (re-cache first).
        latent_height, latent_width: latent size (pixels / 16).
        seed: seeds the noise: one CPU float32 generator, one ``[1, 8, 48, h, w]`` draw per block in order.
        cfg: window, sink, UniPC steps and shift.
        geometry: block size and latent channels.
        times: receives the stages ``prompt``, ``denoise``, ``recache`` and ``clean``.

    Memory is bounded: the KV cache, the current block, the solver's last two x0 and the last
    ``local_attn_size`` latent frames (for a re-cache).
    """
    fpb = geometry.frames_per_block
    timesteps, sigmas = flow_unipc_grid(cfg.sampling_steps, cfg.timestep_shift, cfg.num_train_timesteps)
    shape = (1, fpb, geometry.latent_channels, latent_height, latent_width)
    generator = torch.Generator().manual_seed(seed)
    cache = model.new_cache(
        latent_height, latent_width, capacity_frames=cfg.local_attn_size, sink_frames=cfg.sink_size
    )
    device, dtype = model.device, model.dtype
    step_t = [torch.full((1,), float(t), device=device) for t in timesteps]
    zero = torch.zeros(1, device=device)
    recent: torch.Tensor | None = None  # x0 of the last local_attn_size latent frames (for a re-cache)
    segment = -1
    for index in range(schedule.num_blocks):
        seg, start = schedule.segment_for_block(index), index * fpb
        switched = seg != segment and index > 0
        if seg != segment:
            prompt = None  # the old K/V go before the new ones come
            with stage(times, "prompt"):
                prompt = model.encode_prompt(conditioning(schedule, seg, None))
            if switched:
                assert recent is not None
                recache(model, cache, recent, start, prompt, cfg, times)
            segment = seg
        x = torch.randn(shape, generator=generator).to(device=device, dtype=dtype)
        solver = FlowUniPC(sigmas)
        with stage(times, "denoise"):
            for t in step_t:
                flow = model(x, t, prompt, start_frame=start, cache=cache)
                x = solver.step(flow, x)
        with stage(times, "clean"):  # the cache keeps the finished block's keys/values at t = 0
            model(x, zero, prompt, start_frame=start, cache=cache)
        recent = x if recent is None else torch.cat([recent, x], dim=1)[:, -cfg.local_attn_size :]
        yield SampledBlock(index=index, start_frame=start, segment=seg, switched=switched, latents=x)
