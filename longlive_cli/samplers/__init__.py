"""Samplers: given the causal transformer, a prompt schedule and a seed, yield finished latent blocks.

A sampler is a function ``sampler(model, schedule, *, latent_height, latent_width, seed, sampler_config,
geometry, times) -> Iterator[SampledBlock]`` (:class:`Sampler`); the pipeline knows nothing else of it. Each
yields the blocks in order, each as soon as it is final, with memory bounded whatever the video's length. A
model spec names its sampler (``sampler:``); the sampler is declared, with what it can do (prompt switches,
transitions, relative RoPE, its minimum length...), in :mod:`longlive_cli.registry`, and every check reads
that declaration. :func:`get_sampler` returns the function a name declares. A sampler added with
:func:`~longlive_cli.registry.register_sampler` or an entry point in the ``longlive_cli.samplers`` group is
used like the built-in ones (``docs/extending.md``).

Built in: ``longlive`` (:func:`~longlive_cli.samplers.longlive.sample_longlive`: LongLive's block sampler
with KV re-cache at prompt switches) and ``rolling-forcing``
(:func:`~longlive_cli.samplers.rolling_forcing.sample_rolling`: Rolling Forcing's window of S blocks at
staggered noise levels; also Causal Forcing's long-video model with S = 4).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Protocol, cast

from ..registry import SamplerInfo, register_sampler, sampler_info, sampler_names
from .base import NoiseStream, SampledBlock, flow_schedule

if TYPE_CHECKING:
    from ..geometry import Geometry
    from ..models.spec import SamplerConfig
    from ..models.transformer import CausalWanTransformer
    from ..runtime import StageTimes
    from ..schedule import PromptSchedule

__all__ = [
    "NoiseStream",
    "SampledBlock",
    "Sampler",
    "SamplerInfo",
    "flow_schedule",
    "get_sampler",
    "register_sampler",
    "sampler_info",
    "sampler_names",
]


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
        sampler_config: SamplerConfig,
        geometry: Geometry,
        times: StageTimes | None = None,
    ) -> Iterator[SampledBlock]: ...


def get_sampler(name: str) -> Sampler:
    """The sampler function ``name`` declares (:func:`~longlive_cli.registry.sampler_info`).

    Raises:
        longlive_cli.registry.UnknownComponentError: unknown name (the message lists the known ones).
        longlive_cli.registry.ComponentLoadError: its implementation cannot be imported.
    """
    return cast("Sampler", sampler_info(name).load())
