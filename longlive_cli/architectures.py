"""The model architectures this project runs, as data: numbers, latent space and sampler.

A model spec names its architecture (spec key ``architecture``; presets set it): ``longlive-1.0``
(Wan2.1-T2V-1.3B made causal, LongLive 1.0 and its relatives: 16 fps, 3 latent frames per block) or
``longlive-2.0`` (Wan2.2-TI2V-5B made causal, LongLive 2.0: 24 fps, 8 latent frames per block, shots, image
input). Each :class:`Architecture` carries its :class:`~longlive_cli.geometry.Geometry`, the
:class:`LatentSpace` its latents live in (a decoder must read that space), its sampler and the sampler
settings it defaults to. What a storyboard may ask (prompt switches, transitions, shots, image input,
relative RoPE) is declared by the sampler (:class:`longlive_cli.registry.SamplerInfo`), and every check reads
that declaration.

Sources for ``longlive-2.0``: NVlabs/LongLive ``main`` 7860ad9, ``configs/inference.yaml``
(``num_frame_per_block 8``, ``local_attn_size 32``, ``sink_size 8``, ``multi_shot_sink true``,
``multi_shot_rope_offset 8``, ``sampling_steps 4``, ``timestep_shift 5.0``),
``pipeline/causal_diffusion_inference.py:100-111`` (the ``scene_cut_prefix``, ``multi_shot_sink`` and
``shot_clean_recache`` options), ``utils/dataset.py`` (``DEFAULT_SCENE_CUT_PREFIX``) and
``wan_5b/configs/wan_ti2v_5B.py`` (the backbone).

Torch-free (``longlive validate`` reads it).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any

from .geometry import WAN21, WAN22, Geometry

__all__ = [
    "ARCHITECTURES",
    "DEFAULT_ARCHITECTURE",
    "LONGLIVE_1",
    "LONGLIVE_2",
    "SCENE_CUT_PREFIX",
    "WAN21_LATENTS",
    "WAN22_LATENTS",
    "Architecture",
    "LatentSpace",
    "architecture_of",
]

#: The text the official 2.0 pipeline prepends to the first block's prompt of every shot after the first
#: (``utils/dataset.py`` ``DEFAULT_SCENE_CUT_PREFIX``; the pipeline detects a shot by it,
#: ``pipeline/causal_diffusion_inference.py:974-987``). Here the project adds it; storyboards mark ``cut:
#: true``.
SCENE_CUT_PREFIX = "The scene transitions. "


@dataclass(frozen=True)
class LatentSpace:
    """What a latent tensor means: ``channels`` per latent pixel, one latent pixel per ``spatial_stride``
    video pixels on each side, one latent frame per ``temporal_stride`` video frames (the first latent frame
    is one video frame). A decoder with weights of its own reads exactly one latent space."""

    name: str
    channels: int
    spatial_stride: int
    temporal_stride: int


#: The Wan2.1 VAE's latents (``AutoencoderKLWan``: ``z_dim`` 16, 8x spatial, 4x temporal), normalized with
#: its per-channel mean/std.
WAN21_LATENTS = LatentSpace("wan2.1", channels=16, spatial_stride=8, temporal_stride=4)
#: The Wan2.2 VAE's latents (``z_dim`` 48, 16x spatial, 4x temporal; ``wan_5b/modules/vae2_2.py``).
WAN22_LATENTS = LatentSpace("wan2.2", channels=48, spatial_stride=16, temporal_stride=4)


@dataclass(frozen=True)
class Architecture:
    """One causal video architecture.

    Attributes:
        name: the spec-file value (``architecture: NAME``).
        geometry: the model's numbers (fps, block size, VAE strides, channels, native size).
        latent_space: the latents it generates in (a decoder with its own weights must read them).
        sampler: the sampler name it runs by default (:func:`longlive_cli.registry.sampler_info`).
        sampler_defaults: :class:`~longlive_cli.models.spec.SamplerConfig` keyword arguments it defaults to.
        tiny_random: ``"module:function"`` of its tiny random model, ``build(seed) -> (transformer, vae,
            ...)`` (``base: null`` specs such as ``tiny-random``); imported only when asked for.
        transformer_config: ``"module:function"`` giving the full-size backbone's ``WanTransformer3DModel``
            keyword arguments (the config of :attr:`base_repo`, known without a download: the memory check
            and ``bench``'s random weights read it).
        vae_config: ``"module:function"`` giving the full-size VAE's ``AutoencoderKLWan`` keyword arguments;
            empty: diffusers' defaults, which are the Wan2.1 VAE.
        tiny_transformer_config: ``"module:function"`` giving the tiny random transformer's keyword arguments.
        tiny_vae_size: ``(parameters, first-stage width)`` of the tiny random VAE (the memory check).
        base_repo: the diffusers-layout Hub repo of the base model (configs, text encoder, tokenizer, VAE).
        official: where the official inference lives (for messages and docs).
    """

    name: str
    geometry: Geometry
    latent_space: LatentSpace
    sampler: str
    sampler_defaults: dict[str, Any] = field(default_factory=dict)
    tiny_random: str = ""
    transformer_config: str = ""
    vae_config: str = ""
    tiny_transformer_config: str = ""
    tiny_vae_size: tuple[int, int] = (0, 0)
    base_repo: str = ""
    official: str = ""

    def known_transformer_config(self, *, tiny: bool = False) -> dict[str, Any]:
        """The ``WanTransformer3DModel`` kwargs of the full-size backbone (or of the tiny random one)."""
        return _call(self.tiny_transformer_config if tiny else self.transformer_config)

    def known_vae_config(self) -> dict[str, Any]:
        """The ``AutoencoderKLWan`` kwargs of the full-size VAE (``{}``: diffusers' defaults, Wan2.1's)."""
        return _call(self.vae_config) if self.vae_config else {}


def _call(ref: str) -> Any:
    """The result of the function named ``"module:function"`` (imported only now: this module stays
    torch-free)."""
    module, _, function = ref.partition(":")
    return getattr(importlib.import_module(module), function)()


LONGLIVE_1 = Architecture(
    name="longlive-1.0",
    geometry=WAN21,
    latent_space=WAN21_LATENTS,
    sampler="longlive",
    tiny_random="longlive_cli.models.loaders:build_tiny_random",
    transformer_config="longlive_cli.models.spec:wan_1_3b_transformer_config",
    tiny_transformer_config="longlive_cli.models.spec:tiny_transformer_config",
    tiny_vae_size=(14_779, 4),  # tiny_vae_config()
    base_repo="Wan-AI/Wan2.1-T2V-1.3B-Diffusers",
    official="NVlabs/LongLive v1.0",
)
LONGLIVE_2 = Architecture(
    name="longlive-2.0",
    geometry=WAN22,
    latent_space=WAN22_LATENTS,
    sampler="longlive2",
    tiny_random="longlive_cli.models.wan22:build_tiny_random_2",
    transformer_config="longlive_cli.models.wan22:wan22_5b_transformer_config",
    vae_config="longlive_cli.models.wan22:wan22_vae_config",
    tiny_transformer_config="longlive_cli.models.wan22:tiny_transformer_config_2",
    tiny_vae_size=(38_340, 4),  # tiny_vae_config_2()
    sampler_defaults={
        "name": "longlive2",
        "local_attn_size": 32,
        "sink_size": 8,
        "sampling_steps": 4,  # FlowUniPCMultistepScheduler.set_timesteps(4, shift=5)
        "timestep_shift": 5.0,
        "global_sink": True,
    },
    base_repo="Wan-AI/Wan2.2-TI2V-5B-Diffusers",
    official="NVlabs/LongLive main (2.0)",
)

DEFAULT_ARCHITECTURE = LONGLIVE_1.name
ARCHITECTURES: dict[str, Architecture] = {a.name: a for a in (LONGLIVE_1, LONGLIVE_2)}


def architecture_of(name: str) -> Architecture:
    """The architecture called ``name``.

    Raises:
        ValueError: unknown name (the message lists the known ones).
    """
    try:
        return ARCHITECTURES[name]
    except KeyError:
        raise ValueError(f"architecture {name!r} is not one of {', '.join(ARCHITECTURES)}") from None
