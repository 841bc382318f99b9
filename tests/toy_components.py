"""A toy sampler and a toy decoder from outside the package: what a plugin writes (docs/extending.md).

The sampler makes block ``b`` of every latent frame equal to ``b + 1`` (it never runs the transformer); the
decoder paints each latent frame's video frames grey at ``TOY_LEVEL * mean latent`` (so block ``b``'s frames
are ``TOY_LEVEL * (b + 1)``), ``4F - 3`` frames for the first block of a video and ``4F`` after it, as the
decoders of the Wan latent space do.
"""

from __future__ import annotations

import torch

from longlive_cli.registry import DecoderInfo, SamplerInfo
from longlive_cli.samplers import SampledBlock

TOY_LEVEL = 30  # grey level per unit of latent


def sample_toy(model, schedule, *, latent_height, latent_width, seed, sampler_config, geometry, times=None):
    """The toy sampler: asks the schedule for each block's segment, yields constant latents."""
    fpb, channels = geometry.frames_per_block, geometry.latent_channels
    segment = -1
    for index in range(schedule.num_blocks):
        seg = schedule.segment_for_block(index)
        latents = torch.full((1, fpb, channels, latent_height, latent_width), float(index + 1))
        yield SampledBlock(index, index * fpb, seg, index > 0 and seg != segment, latents)
        segment = seg


class ToyNetwork(torch.nn.Module):
    """The toy decoder's "weights": one scale."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = torch.nn.Parameter(torch.tensor(float(TOY_LEVEL)), requires_grad=False)


def load_toy_network(path) -> ToyNetwork:
    """The toy decoder's network loader (``path`` None: the tiny-random model; no file is read)."""
    return ToyNetwork()


class ToyDecoder:
    """A streaming decoder: ``decode([1, F, C, h, w]) -> uint8 [1, T, 8h, 8w, 3]``."""

    def __init__(self, network: ToyNetwork, *, options=None, fallbacks=None) -> None:
        self.network = network
        self.reset()

    @property
    def device(self) -> torch.device:
        return self.network.scale.device

    def reset(self) -> None:
        self.first = True

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        _, f, _, h, w = latents.shape
        frames = []
        for i in range(f):
            level = (self.network.scale * latents[0, i].float().mean()).clamp(0, 255).round()
            repeat = 1 if self.first else 4
            self.first = False
            frames.append(level.to(torch.uint8).expand(repeat, 8 * h, 8 * w, 3))
        return torch.cat(frames)[None].contiguous()


#: Declared as a plugin would: no prompt switches, no transitions, at least 3 blocks.
TOY_SAMPLER = SamplerInfo(
    "toy",
    sample_toy,
    prompt_switches=False,
    min_blocks=3,
    summary="constant latents, for tests",
)
TOY_DECODER = DecoderInfo(
    "toy",
    "toy_components:ToyDecoder",
    "toy_components:load_toy_network",
    summary="grey frames, for tests",
)
#: A decoder for a latent space no architecture here generates in.
ALIEN_DECODER = DecoderInfo("alien", ToyDecoder, load_toy_network, latent_space="some-other-vae")
