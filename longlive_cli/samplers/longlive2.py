"""LongLive 2.0's block sampler: 8-latent-frame blocks, a fresh flow-UniPC run per block, a clean pass.

Source: NVlabs/LongLive ``main`` 7860ad9 ``pipeline/causal_diffusion_inference.py`` (``_inference_inner``:
the block loop at lines 532-699, the solver at 892-913), ``configs/inference.yaml`` and
``inference.py:606-609``
(the noise). docs/design.md "LongLive 2.0 reference semantics" lists the rules. Per block ``b`` (latent frames
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

4. **shots** (``pipeline/causal_diffusion_inference.py:545-551, 630-664, 974-1042``): a segment that starts
   a new shot (``cut: true``) is conditioned on the scene-cut prefix + its text for its first block and on the
   bare text after it (no re-cache there); from that block on, the temporal RoPE index of queries and written
   keys grows by ``shot_rope_offset`` (8) per shot (cached keys keep theirs); with ``multi_shot_sink`` the
   block's frames are pinned as the shot sink after its clean pass (``shot_clean_recache`` first drops all but
   the global sink). No re-cache at a cut. The cache rules are :class:`~longlive_cli.models.shot_cache.
   ShotKVCache`'s.

A prompt switch *without* a cut (the official 2.0 has none; this project's addition, as LongLive 1.0 does it)
re-caches the current shot: the cached frames of the shot that are not sinks (global sink, pinned shot sink)
are re-encoded under the new prompt at timestep 0 in one pass, at their own slots and RoPE positions,
attending to everything cached; the sinks keep their keys.

Latents are ``[1, F, 48, h, w]`` (batch, latent frames, channels, height/16, width/16).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import torch

from ..geometry import WAN22, Geometry
from ..models.shot_cache import ShotKVCache
from ..models.spec import SamplerConfig
from ..runtime import StageTimes, stage
from ..schedule import PromptSchedule, conditioning, shot_cut
from .base import SampledBlock
from .unipc import FlowUniPC, flow_unipc_grid

if TYPE_CHECKING:
    from ..models.transformer import CausalWanTransformer, PromptContext

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
    sampler_config: SamplerConfig = LONGLIVE2,
    geometry: Geometry = WAN22,
    times: StageTimes | None = None,
    image_latent: torch.Tensor | None = None,
) -> Iterator[SampledBlock]:
    """Generate a video block by block, yielding each block's x0 latents ``[1, 8, 48, h, w]`` when done.

    Args:
        model: the causal transformer (its dtype/device are used throughout).
        schedule: which prompt each block uses; a segment with a cut embedding (:func:`~longlive_cli.schedule.
            shot_cut`) starts a new shot, any other change of segment is an in-shot switch (re-cache first).
        latent_height, latent_width: latent size (pixels / 16).
        seed: seeds the noise: one CPU float32 generator, one ``[1, 8, 48, h, w]`` draw per block in order.
        sampler_config: window, sink, UniPC steps and shift, shot options.
        geometry: block size and latent channels.
        times: receives the stages ``prompt``, ``denoise``, ``recache`` and ``clean``.
        image_latent: image-to-video: the image's normalized latent ``[1, 1, 48, h, w]``
            (:func:`~longlive_cli.images.encode_image`). It overwrites latent frame 0 of block 0 before every
            model call and after every solver step, with timestep 0 for that frame (official
            ``independent_first_frame`` I2V: ``pipeline/causal_diffusion_inference.py:553-627``,
            ``utils/i2v_conditioning.py``).

    Memory is bounded: the KV cache, the current block, the solver's last two x0 and the last
    ``local_attn_size`` latent frames (for a re-cache).
    """
    fpb = geometry.frames_per_block
    timesteps, sigmas = flow_unipc_grid(
        sampler_config.sampling_steps, sampler_config.timestep_shift, sampler_config.num_train_timesteps
    )
    shape = (1, fpb, geometry.latent_channels, latent_height, latent_width)
    generator = torch.Generator().manual_seed(seed)
    cache = _new_cache(model, latent_height, latent_width, sampler_config)
    device, dtype = model.device, model.dtype
    step_t = [torch.full((1,), float(t), device=device) for t in timesteps]
    zero = torch.zeros(1, device=device)
    recent: torch.Tensor | None = None  # x0 of the last local_attn_size latent frames (for a re-cache)
    segment, shot, shot_start = -1, 0, 0
    prompt_seg: int | None = None  # the segment whose bare text `prompt` holds (None: a cut's prefixed text)
    image = None if image_latent is None else image_latent.to(device=device, dtype=dtype)
    for index in range(schedule.num_blocks):
        seg, start = schedule.segment_for_block(index), index * fpb
        cut = shot_cut(schedule, seg) if seg != segment else None
        switched = seg != segment and index > 0
        if cut is not None:  # a new shot: the prefixed text for this block, the bare text from the next
            shot, shot_start, prompt_seg = shot + 1, start, None
            with stage(times, "prompt"):
                prompt = model.encode_prompt(cut)
        elif seg != segment or prompt_seg is None:
            prompt = None  # the old K/V go before the new ones come
            with stage(times, "prompt"):
                prompt = model.encode_prompt(conditioning(schedule, seg, None))
            if switched and seg != segment:
                assert recent is not None
                _recache_shot(
                    model,
                    cache,
                    recent,
                    start,
                    shot_start,
                    prompt,
                    shot * sampler_config.shot_rope_offset,
                    times,
                )
            prompt_seg = seg
        segment, offset = seg, shot * sampler_config.shot_rope_offset
        x = torch.randn(shape, generator=generator).to(device=device, dtype=dtype)
        solver = FlowUniPC(sigmas)
        first = image if index == 0 else None
        with stage(times, "denoise"):
            for t in step_t:
                x = _with_image(x, first)
                tt = t if first is None else _image_timesteps(t, fpb)
                flow = model(x, tt, prompt, start_frame=start, cache=cache, rope_offset=offset)
                x = _with_image(solver.step(flow, x), first)
        pin = cut is not None and sampler_config.multi_shot_sink and sampler_config.sink_size > 0
        with stage(times, "clean"):  # the cache keeps the finished block's keys/values at t = 0
            if pin and sampler_config.shot_clean_recache:
                cache.keep_global_sink()
            model(x, zero, prompt, start_frame=start, cache=cache, rope_offset=offset)
        if pin:
            cache.pin(fpb)
        recent = x if recent is None else torch.cat([recent, x], dim=1)[:, -sampler_config.local_attn_size :]
        yield SampledBlock(index=index, start_frame=start, segment=seg, switched=switched, latents=x)


def _with_image(x: torch.Tensor, image: torch.Tensor | None) -> torch.Tensor:
    """``x`` with latent frame 0 replaced by the image's latent (I2V's first block), else ``x`` itself."""
    if image is None:
        return x
    x = x.clone()
    x[:, :1] = image
    return x


def _image_timesteps(t: torch.Tensor, frames: int) -> torch.Tensor:
    """Per-frame timesteps ``[1, frames]`` at ``t`` with 0 for frame 0 (the image's frame)."""
    out = t.view(1, 1).repeat(1, frames)
    out[:, 0] = 0
    return out


def _new_cache(
    model: CausalWanTransformer, height: int, width: int, sampler_config: SamplerConfig
) -> ShotKVCache:
    return ShotKVCache(
        num_layers=model.num_layers,
        batch_size=1,
        tokens_per_frame=model.tokens_per_frame(height, width),
        heads=model.heads,
        head_dim=model.head_dim,
        capacity=sampler_config.local_attn_size,
        sink=sampler_config.sink_size,
        multi_shot_sink=sampler_config.multi_shot_sink,
        dtype=model.dtype,
        device=model.device,
    )


def _recache_shot(
    model: CausalWanTransformer,
    cache: ShotKVCache,
    recent: torch.Tensor,
    start: int,
    shot_start: int,
    prompt: PromptContext,
    offset: int,
    times: StageTimes | None,
) -> None:
    """Re-encode the cached, unprotected frames of the current shot (from ``shot_start``) under ``prompt`` at
    timestep 0 before the block at ``start``: one pass over the latest ones, at their slots and positions."""
    keep = set(cache.protected())
    frames = [f for f in cache.frames() if f >= shot_start and f not in keep]
    if not frames:
        return
    first = min(frames)
    assert frames == list(range(first, start)), frames  # the shot's latest frames, contiguous
    zero = torch.zeros(1, device=model.device)
    with stage(times, "recache"):
        model(recent[:, first - start :], zero, prompt, start_frame=first, cache=cache, rope_offset=offset)
