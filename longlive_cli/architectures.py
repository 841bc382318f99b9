"""The model architectures this project runs, as data: numbers, sampler and what each one can do.

A model spec names its architecture (spec key ``architecture``; presets set it): ``longlive-1.0``
(Wan2.1-T2V-1.3B
made causal, LongLive 1.0 and its relatives: 16 fps, 3 latent frames per block) or ``longlive-2.0``
(Wan2.2-TI2V-5B made causal, LongLive 2.0: 24 fps, 8 latent frames per block, shots, image input). Each
:class:`Architecture` carries its :class:`~longlive_cli.geometry.Geometry`, its sampler, the sampler settings
it defaults to, and capability flags that the storyboard checks and a capability registry can read.

Sources for ``longlive-2.0``: NVlabs/LongLive ``main`` 7860ad9, ``configs/inference.yaml``
(``num_frame_per_block
8``, ``local_attn_size 32``, ``sink_size 8``, ``multi_shot_sink true``, ``multi_shot_rope_offset 8``,
``sampling_steps 4``, ``timestep_shift 5.0``), ``pipeline/causal_diffusion_inference.py:100-111`` (the
``scene_cut_prefix``, ``multi_shot_sink`` and ``shot_clean_recache`` options), ``utils/dataset.py``
(``DEFAULT_SCENE_CUT_PREFIX``) and ``wan_5b/configs/wan_ti2v_5B.py`` (the backbone).

Torch-free (``longlive validate`` reads it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .geometry import WAN21, WAN22, Geometry

__all__ = [
    "ARCHITECTURES",
    "DEFAULT_ARCHITECTURE",
    "LONGLIVE_2",
    "SCENE_CUT_PREFIX",
    "Architecture",
    "architecture_of",
    "models_with",
]

#: The text the official 2.0 pipeline prepends to the first block's prompt of every shot after the first
#: (``utils/dataset.py`` ``DEFAULT_SCENE_CUT_PREFIX``; the pipeline detects a shot by it,
#: ``pipeline/causal_diffusion_inference.py:974-987``). Here the project adds it; storyboards mark ``cut:
#: true``.
SCENE_CUT_PREFIX = "The scene transitions. "


@dataclass(frozen=True)
class Architecture:
    """One causal video architecture.

    Attributes:
        name: the spec-file value (``architecture: NAME``).
        geometry: the model's numbers (fps, block size, VAE strides, channels, native size).
        sampler: the sampler name it runs by default (:data:`longlive_cli.samplers.SAMPLERS`).
        sampler_defaults: :class:`~longlive_cli.models.spec.SamplerConfig` keyword arguments it defaults to.
        shots: storyboards may start a new shot (``cut: true``): scene-cut prefix, RoPE offset, shot sink.
        image_input: a still image may start the video (image-to-video: ``image:``, ``--image``).
        prompt_switch: a prompt may change inside a shot (with a KV re-cache).
        relative_rope: the model may run with relative temporal RoPE (``--rope relative``).
        transitions: prompt transitions (blends over blocks) are supported.
        base_repo: the diffusers-layout Hub repo of the base model (configs, text encoder, tokenizer, VAE).
        official: where the official inference lives (for messages and docs).
    """

    name: str
    geometry: Geometry
    sampler: str
    sampler_defaults: dict[str, Any] = field(default_factory=dict)
    shots: bool = False
    image_input: bool = False
    prompt_switch: bool = True
    relative_rope: bool = False
    transitions: bool = True
    base_repo: str = ""
    official: str = ""


LONGLIVE_1 = Architecture(
    name="longlive-1.0",
    geometry=WAN21,
    sampler="longlive",
    relative_rope=True,
    base_repo="Wan-AI/Wan2.1-T2V-1.3B-Diffusers",
    official="NVlabs/LongLive v1.0",
)
LONGLIVE_2 = Architecture(
    name="longlive-2.0",
    geometry=WAN22,
    sampler="longlive2",
    sampler_defaults={
        "name": "longlive2",
        "local_attn_size": 32,
        "sink_size": 8,
        "sampling_steps": 4,  # FlowUniPCMultistepScheduler.set_timesteps(4, shift=5)
        "timestep_shift": 5.0,
        "global_sink": True,
    },
    shots=True,
    image_input=True,
    prompt_switch=True,
    transitions=False,
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


def models_with(flag: str, presets: dict[str, Any]) -> list[str]:
    """Names of the ``presets`` (name -> spec with an ``architecture``) whose architecture has ``flag`` set
    (``"shots"``, ``"image_input"``...), for messages that say which models accept a feature."""
    return [n for n, s in presets.items() if getattr(architecture_of(s.architecture), flag)]
