"""Model presets and loading: which weights, which sampler settings, and how to build the parts.

A preset is a built-in :class:`ModelSpec`. ``longlive-1.3b`` names the official LongLive weights
(NVlabs/LongLive README and ``configs/longlive_interactive_inference.yaml``: Hub repo
``Efficient-Large-Model/LongLive-1.3B``, files ``models/longlive_base.pt`` and ``models/lora.pt``,
LoRA rank 256 / alpha 256) on the ``Wan-AI/Wan2.1-T2V-1.3B-Diffusers`` base. ``tiny-random`` is
the same architecture family at toy size with random weights, built in-process: it needs no
download and produces noise-like video, for trying the tool and for tests.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch

from ..sampler import SamplerConfig

if TYPE_CHECKING:  # the heavy libraries load only when a model is built
    from diffusers import AutoencoderKLWan, WanTransformer3DModel

    from ..text import TextEncoder
    from .transformer import CausalWanTransformer

DEFAULT_MODEL = "longlive-1.3b"


class ModelUnavailableError(RuntimeError):
    """The chosen model cannot be loaded here; ``str()`` says why and what to do."""


@dataclass(frozen=True)
class ModelSpec:
    """Where a model's weights come from and how to sample from it.

    ``base`` is a Hub repo id or local folder in diffusers layout (``transformer/``, ``vae/``,
    ``text_encoder/``, ``tokenizer/``); ``generator``/``lora`` are ``repo:path`` references to the
    official LongLive checkpoint files. ``None`` for ``base`` means: build tiny random weights.
    Sampler sizes are in latent frames; ``native_resolution`` is ``(width, height)`` in pixels, used
    when a storyboard gives none.
    """

    name: str
    base: str | None
    generator: str | None = None
    generator_key: str = "generator"
    lora: str | None = None
    lora_rank: int = 256
    lora_alpha: int = 256
    sampler: SamplerConfig = field(default_factory=SamplerConfig)
    fps: int = 16
    native_resolution: tuple[int, int] = (832, 480)


PRESETS: dict[str, ModelSpec] = {
    "longlive-1.3b": ModelSpec(
        name="longlive-1.3b",
        base="Wan-AI/Wan2.1-T2V-1.3B-Diffusers",
        generator="Efficient-Large-Model/LongLive-1.3B:models/longlive_base.pt",
        lora="Efficient-Large-Model/LongLive-1.3B:models/lora.pt",
    ),
    # Small native size: the Wan VAE decoder's causal 3-D convolutions are slow on CPU at 832x480.
    "tiny-random": ModelSpec(name="tiny-random", base=None, native_resolution=(128, 80)),
}


def resolve_model(name: str) -> ModelSpec:
    """The spec for preset ``name``.

    Raises:
        ModelUnavailableError: for an unknown name (the message lists the presets).
    """
    if name in PRESETS:
        return PRESETS[name]
    raise ModelUnavailableError(
        f"unknown model {name!r}. Presets: {', '.join(PRESETS)}. (Model spec files are not supported yet.)"
    )


@dataclass
class Model:
    """The three parts of a loaded model plus its spec."""

    spec: ModelSpec
    transformer: CausalWanTransformer
    vae: AutoencoderKLWan
    text_encoder: TextEncoder | None


def tiny_transformer_config() -> dict:
    """``WanTransformer3DModel`` kwargs of the tiny-random preset: Wan2.1's layout at toy size
    (2 layers, 2 heads of 12 channels, text_dim 32 = the tiny UMT5's d_model)."""
    return dict(
        patch_size=(1, 2, 2),
        num_attention_heads=2,
        attention_head_dim=12,
        in_channels=16,
        out_channels=16,
        text_dim=32,
        freq_dim=16,
        ffn_dim=48,
        num_layers=2,
        cross_attn_norm=True,
        qk_norm="rms_norm_across_heads",
        eps=1e-6,
        rope_max_seq_len=1024,
    )


def build_tiny_random(seed: int = 0) -> tuple[WanTransformer3DModel, AutoencoderKLWan, TextEncoder]:
    """Tiny random transformer, VAE and text encoder, identical for the same ``seed``."""
    from diffusers import AutoencoderKLWan, WanTransformer3DModel

    from ..decode import tiny_vae_config
    from ..text import build_tiny_text_encoder

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        wan = WanTransformer3DModel(**tiny_transformer_config())
        vae = AutoencoderKLWan(**tiny_vae_config())
    return wan, vae, build_tiny_text_encoder(seed)


def load_model(spec: ModelSpec, *, device: torch.device, dtype: torch.dtype) -> Model:
    """Build or load ``spec``'s transformer, VAE and text encoder on ``device``.

    The transformer runs in ``dtype``; the VAE and text encoder too (float32 on CPU).

    Raises:
        ModelUnavailableError: when the weights cannot be had (the message says what to do).
    """
    if spec.base is not None:
        raise ModelUnavailableError(
            f"model {spec.name!r} needs the official LongLive weights ({spec.generator}, {spec.lora}) "
            f"on the {spec.base} base, and loading them is not available in this version yet. "
            "Use --model tiny-random to try the tool end to end (it produces noise-like video)."
        )
    from .transformer import CausalWanTransformer

    wan, vae, text = build_tiny_random()
    for part in (wan, vae, text.text_encoder):
        # Built in float32; cast only when asked (the official inference casts every module alike).
        if dtype == torch.float32:
            part.to(device=device)
        else:
            part.to(device=device, dtype=dtype)
    transformer = CausalWanTransformer(wan).eval().requires_grad_(False)
    return Model(spec=spec, transformer=transformer, vae=vae.eval().requires_grad_(False), text_encoder=text)
