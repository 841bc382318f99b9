"""Samplers: given the causal transformer, a prompt schedule and a seed, yield finished latent blocks.

A sampler is a function ``sampler(model, schedule, *, latent_height, latent_width, seed, cfg, geometry,
times) -> Iterator[SampledBlock]`` (:class:`Sampler`); the pipeline knows nothing else of it. Each yields
the blocks in order, each as soon as it is final, with memory bounded whatever the video's length. A model
spec names its sampler (``sampler:``); :data:`SAMPLERS` maps the names to the functions.

Implementations: ``longlive`` (:func:`~longlive_cli.samplers.longlive.sample_longlive`: LongLive's block
sampler with KV re-cache at prompt switches) and ``rolling-forcing``
(:func:`~longlive_cli.samplers.rolling_forcing.sample_rolling`: Rolling Forcing's window of S blocks at
staggered noise levels; also Causal Forcing's long-video model with S = 4) and ``longlive2``
(:func:`~longlive_cli.samplers.longlive2.sample_longlive2`: LongLive 2.0's 8-frame blocks with flow UniPC).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Protocol

from .base import NoiseStream, SampledBlock, flow_schedule
from .longlive import sample_longlive
from .longlive2 import sample_longlive2
from .rolling_forcing import sample_rolling

if TYPE_CHECKING:
    from ..geometry import Geometry
    from ..models.spec import SamplerConfig
    from ..models.transformer import CausalWanTransformer
    from ..runtime import StageTimes
    from ..schedule import PromptSchedule

__all__ = ["SAMPLERS", "NoiseStream", "SampledBlock", "Sampler", "flow_schedule", "get_sampler"]


class Sampler(Protocol):
    """The sampler interface (see the module docs)."""

    def __call__(
        self,
        model: CausalWanTransformer,
        schedule: PromptSchedule,
        *,
        latent_height: int,
        latent_width: int,
        seed: int,
        cfg: SamplerConfig,
        geometry: Geometry,
        times: StageTimes | None = None,
    ) -> Iterator[SampledBlock]: ...


SAMPLERS: dict[str, Sampler] = {
    "longlive": sample_longlive,
    "rolling-forcing": sample_rolling,
    "longlive2": sample_longlive2,  # LongLive 2.0 (Wan2.2-TI2V-5B): flow UniPC per 8-frame block, shots
}


def get_sampler(name: str) -> Sampler:
    """The sampler called ``name``.

    Raises:
        ValueError: unknown name (the message lists the known ones).
    """
    try:
        return SAMPLERS[name]
    except KeyError:
        raise ValueError(f"unknown sampler {name!r}; known: {', '.join(SAMPLERS)}") from None
