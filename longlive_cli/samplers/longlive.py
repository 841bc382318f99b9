"""LongLive's causal few-step sampler: block-by-block flow matching with a KV cache and re-cache.

Source: NVlabs/LongLive v1.0 ``pipeline/interactive_causal_inference.py`` (block loop, clean
context pass, ``_recache_after_switch``), ``utils/scheduler.py`` (``FlowMatchScheduler``) and
``utils/wan_wrapper.py`` (flow -> x0 in float64). docs/design.md "Reference semantics" lists the rules.

Latents are ``[1, F, 16, h, w]`` (batch, latent frames, channels, height/8, width/8).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

import torch

from ..geometry import WAN21, Geometry
from ..models.spec import SamplerConfig
from ..runtime import StageTimes, stage
from ..schedule import FixedSchedule, PromptSchedule, block_transition, conditioning
from .base import NoiseStream, SampledBlock, flow_schedule

if TYPE_CHECKING:
    from ..models.kv_cache import KVCache
    from ..models.transformer import CausalWanTransformer, PromptContext

__all__ = ["recache", "sample_longlive", "sample_video"]


def recache(
    model: CausalWanTransformer,
    cache: KVCache,
    recent: torch.Tensor,
    start_frame: int,
    prompt: PromptContext,
    sampler_config: SamplerConfig,
    times: StageTimes | None = None,
) -> None:
    """Rewrite the KV cache for a new prompt before the block at ``start_frame`` (LongLive §3.1).

    ``recent`` holds the x0 of the last ``min(local_attn_size, start_frame)`` latent frames,
    ``[1, n, 16, h, w]``. One pass at timestep 0 under the new prompt, bidirectional among the
    frames, rewrites them at their own slots. With ``global_sink`` and a window that has already
    moved past frame 0, the sink keeps its old keys/values and only the frames outside it are
    re-encoded (the official pass also covers the three frames before them, whose keys are never
    stored nor attended to). Otherwise the cache is cleared and every re-cached frame is written,
    so the first ``sink_size`` of them become the new sink.

    With relative RoPE (a :class:`~longlive_cli.models.kv_cache.RelativeKVCache`; the official infinity code
    has no switches, so this is this project's rule) the same frames are re-encoded and stored unrotated, and
    ranks follow the cache's one rule: in the re-cache pass the kept sink is at 0-2 and the re-encoded frames
    at 3-11 (after a clear: 0 .. n-1), and every later pass ranks them afresh by frame number.
    """
    n = recent.shape[1]
    first = start_frame - n
    if sampler_config.global_sink and first > 0:
        keep = sampler_config.local_attn_size - sampler_config.sink_size
        recent, first = recent[:, -keep:], start_frame - keep
    else:
        cache.clear()
    t0 = torch.zeros(1, device=model.device)
    with stage(times, "recache"):
        model(recent, t0, prompt, start_frame=first, cache=cache)


@torch.inference_mode()
def sample_longlive(
    model: CausalWanTransformer,
    schedule: PromptSchedule,
    *,
    latent_height: int,
    latent_width: int,
    seed: int,
    sampler_config: SamplerConfig = SamplerConfig(),
    geometry: Geometry = WAN21,
    times: StageTimes | None = None,
) -> Iterator[SampledBlock]:
    """Generate a video block by block, yielding each block's x0 latents ``[1, 3, 16, h, w]`` when done.

    Args:
        model: the causal transformer (its dtype/device are used throughout).
        schedule: which prompt each block uses (:mod:`longlive_cli.schedule`); asked once per block, just
            before the block starts; a change of segment is a prompt switch (re-cache first); a block in a
            transition is generated under a blend of two prompts (re-cached per
            ``sampler_config.transition_recache``).
        latent_height, latent_width: latent size (pixels / 8).
        seed: seeds the single noise stream (:class:`~longlive_cli.samplers.base.NoiseStream`).
        sampler_config: sampling hyper-parameters (window, sink, steps, shift, ``global_sink``).
        geometry: block size and latent channels.
        times: receives the stages ``prompt``, ``denoise``, ``recache`` and ``clean``.

    The loop never reads a device value back to the host (no ``.item()``, no ``.cpu()``): on CUDA
    the host queues block after block without waiting for the GPU. Memory is bounded: the KV
    cache, the current block and the last ``local_attn_size`` latent frames (for re-cache) are all
    that is kept.
    """
    fpb = geometry.frames_per_block
    timesteps, sigmas = flow_schedule(sampler_config)
    timesteps, sigmas = timesteps.to(model.device), sigmas.to(model.device)
    shape = (1, fpb, geometry.latent_channels, latent_height, latent_width)
    noise = NoiseStream(seed, num_blocks=schedule.num_blocks, block_shape=shape)
    cache = model.new_cache(
        latent_height,
        latent_width,
        capacity_frames=sampler_config.local_attn_size,
        sink_frames=sampler_config.sink_size,
        rope=sampler_config.rope,
    )
    zero = torch.zeros(1, device=model.device)
    recent: torch.Tensor | None = None  # x0 of the last local_attn_size latent frames
    segment, mix = -1, None
    for index in range(schedule.num_blocks):
        seg, blend, start = schedule.segment_for_block(index), block_transition(schedule, index), index * fpb
        switched = seg != segment and index > 0
        if (seg, blend) != (segment, mix):  # a new prompt, or a transition's next blend
            mix, prompt = blend, None  # the old K/V go before the new ones come
            with stage(times, "prompt"):
                prompt = model.encode_prompt(conditioning(schedule, seg, mix))
            if index > 0 and _recaches(sampler_config, switched, mix):
                assert recent is not None
                recache(model, cache, recent, start, prompt, sampler_config, times)
            segment = seg
        block_noise = noise.block(len(timesteps) - 1, model.device).to(model.dtype)
        x = block_noise[0]
        with stage(times, "denoise"):
            for i in range(len(timesteps)):
                flow = model(x, timesteps[i : i + 1], prompt, start_frame=start, cache=cache)
                x0 = (x.double() - sigmas[i].double() * flow.double()).to(model.dtype)
                if i + 1 < len(timesteps):
                    s = sigmas[i + 1]
                    x = ((1 - s) * x0 + s * block_noise[i + 1]).to(model.dtype)
        with stage(times, "clean"):  # the cache keeps the finished block's keys/values at t = 0
            model(x0, zero, prompt, start_frame=start, cache=cache)
        recent = (
            x0 if recent is None else torch.cat([recent, x0], dim=1)[:, -sampler_config.local_attn_size :]
        )
        yield SampledBlock(index=index, start_frame=start, segment=seg, switched=switched, latents=x0)


def _recaches(sampler_config: SamplerConfig, switched: bool, mix: object) -> bool:
    """Re-cache before a block whose conditioning changed? A hard switch always; a transition's blocks per
    ``sampler_config.transition_recache``: ``every`` change, the ``first`` (the switch) only, or ``none``."""
    if mix is None and switched:
        return True
    return sampler_config.transition_recache == "every" or (
        switched and sampler_config.transition_recache == "first"
    )


def sample_video(
    model: CausalWanTransformer,
    prompt_embeds: Sequence[torch.Tensor],
    segment_of_block: Sequence[int],
    **kwargs,
) -> Iterator[SampledBlock]:
    """:func:`sample_longlive` for a fixed list of prompts: ``prompt_embeds`` holds one UMT5 embedding
    ``[1, n <= 512, text_dim]`` per segment, ``segment_of_block`` the segment of every block; ``kwargs`` as
    :func:`sample_longlive`'s."""
    return sample_longlive(model, FixedSchedule(prompt_embeds, segment_of_block), **kwargs)
