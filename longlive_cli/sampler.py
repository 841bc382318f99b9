"""LongLive's causal few-step sampler: block-by-block flow matching with a KV cache and re-cache.

Source: NVlabs/LongLive v1.0 ``pipeline/interactive_causal_inference.py`` (block loop, clean
context pass, ``_recache_after_switch``), ``utils/scheduler.py`` (``FlowMatchScheduler``) and
``utils/wan_wrapper.py`` (flow -> x0 in float64). DESIGN.md "Reference semantics" lists the rules.

Latents are ``[1, F, 16, h, w]`` (batch, latent frames, channels, height/8, width/8).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from .runtime import StageTimes, stage

if TYPE_CHECKING:
    from .models.kv_cache import KVCache
    from .models.transformer import CausalWanTransformer, PromptContext

LATENT_CHANNELS = 16


@dataclass(frozen=True)
class SamplerConfig:
    """Sampling hyper-parameters (defaults: ``configs/longlive_interactive_inference.yaml``).

    ``frames_per_block``, ``local_attn_size`` and ``sink_size`` are in latent frames;
    ``denoising_steps`` are indices into the shifted 1000-step table (``warp_denoising_step``).
    """

    frames_per_block: int = 3
    local_attn_size: int = 12
    sink_size: int = 3
    denoising_steps: tuple[int, ...] = (1000, 750, 500, 250)
    timestep_shift: float = 5.0
    num_train_timesteps: int = 1000
    global_sink: bool = True


def flow_schedule(cfg: SamplerConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """Timesteps and sigmas (float32, one per denoising step) the model actually sees.

    The table is ``FlowMatchScheduler(shift, sigma_min=0, extra_one_step=True)`` over
    ``num_train_timesteps`` steps: ``sigma = linspace(1, 0, n + 1)[:-1]``, shifted
    ``s' = shift*s / (1 + (shift - 1)*s)``, ``t = 1000*s'``; step ``k`` reads entry ``n - k``
    (with an extra 0 at the end). For the defaults: t = 1000, 937.5, 833.33, 625.

    Raises:
        ValueError: for a step outside ``1 .. num_train_timesteps``.
    """
    n = cfg.num_train_timesteps
    if any(not 0 < s <= n for s in cfg.denoising_steps):
        raise ValueError(f"denoising steps must be in 1..{n}, got {list(cfg.denoising_steps)}")
    sigmas = torch.linspace(1.0, 0.0, n + 1, dtype=torch.float32)[:-1]
    sigmas = cfg.timestep_shift * sigmas / (1 + (cfg.timestep_shift - 1) * sigmas)
    timesteps = sigmas * n
    index = n - torch.tensor(cfg.denoising_steps)
    return timesteps[index], sigmas[index]


class NoiseStream:
    """All randomness of one video from one seed, in the official order.

    The official pipeline draws the initial noise ``[1, L, 16, h, w]`` first, then one
    ``[3, 16, h, w]`` draw after each of steps 1-3 of every block. Two CPU generators reproduce
    that stream without holding ``L`` frames: one yields the initial noise block by block, the
    other starts where the whole initial draw would end (torch's CPU normal sampler fills in
    16-value groups, so per-block draws concatenate to the one-shot draw; a test pins this).
    Noise is drawn on the CPU in float32 so the same seed gives the same video on any device.
    """

    def __init__(self, seed: int, *, num_blocks: int, block_shape: tuple[int, ...]) -> None:
        self.block_shape = block_shape
        self._initial = torch.Generator().manual_seed(seed)
        self._step = torch.Generator().manual_seed(seed)
        for _ in range(num_blocks):  # skip over the initial noise, one block at a time
            torch.randn(block_shape, generator=self._step)

    def initial(self) -> torch.Tensor:
        """The next block's starting noise ``[1, F, 16, h, w]``."""
        return torch.randn(self.block_shape, generator=self._initial)

    def step(self, shape: tuple[int, ...] | None = None) -> torch.Tensor:
        """Fresh noise for one re-noising step, ``[1, F, 16, h, w]`` (or ``shape``: Rolling Forcing
        draws a whole window's shape at a time)."""
        return torch.randn(self.block_shape if shape is None else shape, generator=self._step)

    def block(self, num_steps: int, device: torch.device) -> torch.Tensor:
        """A block's initial noise and ``num_steps`` step noises, ``[1 + num_steps, 1, F, 16, h, w]``,
        on ``device`` in float32: one host-to-device copy per block, from pinned memory on CUDA so
        the copy does not make the host wait (no per-step host sync)."""
        host = torch.stack([self.initial(), *(self.step() for _ in range(num_steps))])
        if device.type == "cuda":
            host = host.pin_memory()
        return host.to(device, non_blocking=True)


@dataclass(frozen=True)
class SampledBlock:
    """One finished block: ``latents`` ``[1, F, 16, h, w]`` (x0, model dtype) from latent frame
    ``start_frame``, generated under prompt ``segment``; ``switched`` when a re-cache preceded it."""

    index: int
    start_frame: int
    segment: int
    switched: bool
    latents: torch.Tensor


def recache(
    model: CausalWanTransformer,
    cache: KVCache,
    recent: torch.Tensor,
    start_frame: int,
    prompt: PromptContext,
    cfg: SamplerConfig,
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
    """
    n = recent.shape[1]
    first = start_frame - n
    if cfg.global_sink and first > 0:
        keep = cfg.local_attn_size - cfg.sink_size
        recent, first = recent[:, -keep:], start_frame - keep
    else:
        cache.clear()
    t0 = torch.zeros(1, device=model.device)
    with stage(times, "recache"):
        model(recent, t0, prompt, start_frame=first, cache=cache)


@torch.inference_mode()
def sample_video(
    model: CausalWanTransformer,
    prompt_embeds: Sequence[torch.Tensor],
    segment_of_block: Sequence[int],
    *,
    latent_height: int,
    latent_width: int,
    seed: int,
    cfg: SamplerConfig = SamplerConfig(),
    times: StageTimes | None = None,
) -> Iterator[SampledBlock]:
    """Generate a video block by block, yielding each block's x0 latents as soon as it is done.

    Args:
        model: the causal transformer (its dtype/device are used throughout).
        prompt_embeds: one UMT5 embedding ``[1, n <= 512, text_dim]`` per storyboard segment.
        segment_of_block: the segment index for every block; a change is a prompt switch.
        latent_height, latent_width: latent size (pixels / 8).
        seed: seeds the single noise stream.
        cfg: sampling hyper-parameters.
        times: receives the stages ``prompt``, ``denoise``, ``recache`` and ``clean``.

    The loop never reads a device value back to the host (no ``.item()``, no ``.cpu()``): on CUDA
    the host queues block after block without waiting for the GPU. Memory is bounded: the KV
    cache, the current block and the last ``local_attn_size`` latent frames (for re-cache) are all
    that is kept.
    """
    fpb = cfg.frames_per_block
    timesteps, sigmas = flow_schedule(cfg)
    timesteps, sigmas = timesteps.to(model.device), sigmas.to(model.device)
    shape = (1, fpb, LATENT_CHANNELS, latent_height, latent_width)
    noise = NoiseStream(seed, num_blocks=len(segment_of_block), block_shape=shape)
    cache = model.new_cache(
        latent_height, latent_width, capacity_frames=cfg.local_attn_size, sink_frames=cfg.sink_size
    )
    zero = torch.zeros(1, device=model.device)
    recent: torch.Tensor | None = None  # x0 of the last local_attn_size latent frames
    segment = -1
    for index, seg in enumerate(segment_of_block):
        start = index * fpb
        switched = seg != segment and index > 0
        if seg != segment:
            prompt = None  # the old prompt's K/V (30 layers x 512 tokens) go before the new ones come
            with stage(times, "prompt"):
                prompt = model.encode_prompt(prompt_embeds[seg])
            if switched:
                recache(model, cache, recent, start, prompt, cfg, times)
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
        recent = x0 if recent is None else torch.cat([recent, x0], dim=1)[:, -cfg.local_attn_size :]
        yield SampledBlock(index=index, start_frame=start, segment=seg, switched=switched, latents=x0)
