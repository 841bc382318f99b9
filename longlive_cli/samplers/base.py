"""What every sampler of this family shares: the shifted flow-matching schedule, the seeded noise stream,
and the finished block it yields.

Sources: NVlabs/LongLive v1.0 ``utils/scheduler.py`` (``FlowMatchScheduler``, ``warp_denoising_step``) and
``pipeline/interactive_causal_inference.py`` (the order of noise draws). Latents are ``[1, F, C, h, w]``
(batch, latent frames, channels, height/8, width/8).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..models.spec import SamplerConfig

__all__ = ["NoiseStream", "SampledBlock", "flow_schedule"]


def flow_schedule(sampler_config: SamplerConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """Timesteps and sigmas (float32, one per denoising step) the model actually sees.

    The table is ``FlowMatchScheduler(shift, sigma_min=0, extra_one_step=True)`` over
    ``num_train_timesteps`` steps: ``sigma = linspace(1, 0, n + 1)[:-1]``, shifted
    ``s' = shift*s / (1 + (shift - 1)*s)``, ``t = 1000*s'``; step ``k`` reads entry ``n - k``
    (with an extra 0 at the end). For the defaults: t = 1000, 937.5, 833.33, 625.

    Raises:
        ValueError: for a step outside ``1 .. num_train_timesteps``.
    """
    n = sampler_config.num_train_timesteps
    if any(not 0 < s <= n for s in sampler_config.denoising_steps):
        raise ValueError(f"denoising steps must be in 1..{n}, got {list(sampler_config.denoising_steps)}")
    sigmas = torch.linspace(1.0, 0.0, n + 1, dtype=torch.float32)[:-1]
    sigmas = sampler_config.timestep_shift * sigmas / (1 + (sampler_config.timestep_shift - 1) * sigmas)
    timesteps = sigmas * n
    index = n - torch.tensor(sampler_config.denoising_steps)
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
