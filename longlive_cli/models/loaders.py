"""Loading a model's parts: the causal transformer (official checkpoints, LoRA, INT8), the VAE, the UMT5
encoder.

What to load and from where is the spec's (:mod:`longlive_cli.models.spec`); the file formats are the
converters' (:mod:`~longlive_cli.models.checkpoints` for the transformer, :mod:`~longlive_cli.models.vae`,
:mod:`~longlive_cli.models.umt5`, :mod:`~longlive_cli.models.int8`). ``tiny-random`` is built here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import torch

from ..geometry import Geometry
from .spec import ModelSpec, ModelUnavailableError, components, converted_cache_dir, fetch_components

if TYPE_CHECKING:  # the heavy libraries load only when a model is built
    from diffusers import AutoencoderKLWan, WanTransformer3DModel

    from .transformer import CausalWanTransformer
    from .umt5 import TextEncoder

__all__ = [
    "Model",
    "build_tiny_random",
    "load_decoder_only",
    "load_model",
    "load_text_encoder",
    "tiny_transformer_config",
    "wan_1_3b_transformer_config",
]


@dataclass
class Model:
    """A loaded video model: the causal transformer, the VAE and the spec they came from.

    ``geometry`` is the spec's, with what the transformer's config says filled in (latent channels,
    patch size, RoPE table length).
    """

    spec: ModelSpec
    transformer: CausalWanTransformer
    vae: AutoencoderKLWan

    @property
    def geometry(self) -> Geometry:
        return geometry_from_config(self.spec.geometry, self.transformer.wan.config)


def geometry_from_config(geometry: Geometry, config) -> Geometry:
    """``geometry`` with the numbers a ``WanTransformer3DModel`` config fixes (``in_channels``,
    ``patch_size``, ``rope_max_seq_len``) taken from ``config``; a relative-RoPE geometry (no table)
    keeps None."""
    rope = geometry.rope_max_latent_frames and config.rope_max_seq_len
    return replace(
        geometry,
        latent_channels=config.in_channels,
        patch_size=tuple(config.patch_size),
        rope_max_latent_frames=rope or None,
    )


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


def wan_1_3b_transformer_config() -> dict:
    """``WanTransformer3DModel`` kwargs of Wan2.1-T2V-1.3B (``Wan-AI/Wan2.1-T2V-1.3B-Diffusers``
    ``transformer/config.json``): 30 layers, 12 heads of 128 channels, FFN 8960, text_dim 4096."""
    return dict(
        patch_size=(1, 2, 2),
        num_attention_heads=12,
        attention_head_dim=128,
        in_channels=16,
        out_channels=16,
        text_dim=4096,
        freq_dim=256,
        ffn_dim=8960,
        num_layers=30,
        cross_attn_norm=True,
        qk_norm="rms_norm_across_heads",
        eps=1e-6,
        rope_max_seq_len=1024,
    )


def build_tiny_random(seed: int = 0) -> tuple[WanTransformer3DModel, AutoencoderKLWan, TextEncoder]:
    """Tiny random transformer, VAE and text encoder, identical for the same ``seed``."""
    from diffusers import AutoencoderKLWan, WanTransformer3DModel

    from .umt5 import build_tiny_text_encoder
    from .vae import tiny_vae_config

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        wan = WanTransformer3DModel(**tiny_transformer_config())
        vae = AutoencoderKLWan(**tiny_vae_config())
    return wan, vae, build_tiny_text_encoder(seed)


def _place(module: torch.nn.Module, device: torch.device | str, dtype: torch.dtype) -> torch.nn.Module:
    # Cast only when asked: the official inference casts every module alike; float32 stays as built.
    module = module.to(device=device) if dtype == torch.float32 else module.to(device=device, dtype=dtype)
    return module.eval().requires_grad_(False)


def load_text_encoder(
    spec: ModelSpec, *, device: torch.device | str, dtype: torch.dtype = torch.float32, offline: bool = False
) -> TextEncoder:
    """The spec's UMT5 text encoder and tokenizer on ``device``.

    LongLive runs the encoder in float32 on CUDA too (``utils/wan_wrapper.py``); ``dtype`` is what
    the caller wants (callers free it before generation).

    Raises:
        WeightsUnavailableError / ModelUnavailableError: the weights cannot be had or read.
    """
    from .umt5 import TextEncoder

    if spec.base is None:
        from .umt5 import build_tiny_text_encoder

        text = build_tiny_text_encoder(seed=0)  # the text part of build_tiny_random(seed=0)
        _place(text.text_encoder, device, dtype)
        return text
    paths = fetch_components(spec, components(spec, for_video=False), offline=offline)
    encoder, tokenizer = paths["text_encoder"], paths["tokenizer"]
    try:
        if encoder.is_file():
            return TextEncoder.from_wan_checkpoint(encoder, tokenizer, torch_dtype=dtype, device=device)
        text = TextEncoder.from_pretrained(encoder.parent, subfolder_encoder=encoder.name, torch_dtype=dtype)
        if tokenizer != encoder.parent / "tokenizer":
            from transformers import AutoTokenizer

            text = TextEncoder(text.text_encoder, AutoTokenizer.from_pretrained(tokenizer))
        _place(text.text_encoder, device, dtype)
        return text
    except (OSError, ValueError) as err:
        raise ModelUnavailableError(f"cannot load the text encoder from {encoder}: {err}") from None


def load_model(
    spec: ModelSpec, *, device: torch.device | str, dtype: torch.dtype, offline: bool = False
) -> Model:
    """Load the spec's causal transformer (generator weights, LoRA and user LoRAs merged) and VAE on
    ``device``.

    The transformer runs in ``dtype``; the VAE too. Converted generator weights (with the LoRAs merged) are
    cached under :func:`converted_cache_dir` so later runs memory-map them; a base or ``tiny-random``
    transformer gets the user LoRAs merged in place.

    Raises:
        WeightsUnavailableError / ModelUnavailableError: the weights cannot be had or read.
    """
    from .transformer import CausalWanTransformer

    if spec.base is None:
        wan, _, _ = build_tiny_random()
        paths = fetch_components(spec, components(spec, for_text=False), offline=offline)
        vae = _decoder_network(spec, paths)
        if spec.quantized:
            from .int8 import load_quantized

            wan = load_quantized(paths["quantized"], scheme=spec.scheme or "", device=device, dtype=dtype)
        _apply_user_loras(spec, wan, paths)
    else:
        from .checkpoints import CheckpointError, load_diffusers_transformer, load_transformer

        paths = fetch_components(spec, components(spec, for_text=False), offline=offline)
        try:
            if "quantized" in paths:
                from .int8 import load_quantized

                wan = load_quantized(paths["quantized"], scheme=spec.scheme or "", device=device, dtype=dtype)
            elif "generator" in paths:
                config = json.loads(paths["transformer_config"].read_text())
                wan = load_transformer(
                    config,
                    generator=paths["generator"],
                    generator_key=spec.generator_key,
                    lora=paths.get("lora"),
                    lora_rank=spec.lora_rank,
                    lora_alpha=spec.lora_alpha,
                    cache_dir=converted_cache_dir(),
                    dtype=dtype,
                    user_loras=_user_lora_files(spec, paths),
                )
            else:
                wan = load_diffusers_transformer(paths["transformer"], dtype=dtype)
                _apply_user_loras(spec, wan, paths)
            vae = _decoder_network(spec, paths)
        except (CheckpointError, OSError, ValueError) as err:
            raise ModelUnavailableError(f"cannot load model {spec.name}: {err}") from None
    # A quantized transformer is built on ``device`` in ``dtype`` already (torchao tensors are not cast).
    transformer = CausalWanTransformer(wan if spec.quantized else _place(wan, device, dtype))
    return Model(spec=spec, transformer=transformer, vae=_place(vae, device, dtype))


def _user_lora_files(spec: ModelSpec, paths: dict) -> list[tuple[Path, float]]:
    """The spec's user LoRAs as ``(local file, scale)`` in merge order (roles ``user_lora.N``)."""
    return [(paths[f"user_lora.{i}"], lora.scale) for i, lora in enumerate(spec.loras, start=1)]


def _apply_user_loras(spec: ModelSpec, wan: WanTransformer3DModel, paths: dict) -> None:
    """Merge the spec's user LoRAs into ``wan`` in place (a model not built from a generator checkpoint)."""
    if not spec.loras:
        return
    from .checkpoints import CheckpointError
    from .user_loras import apply_user_loras

    try:
        apply_user_loras(wan, _user_lora_files(spec, paths))
    except CheckpointError as err:
        raise ModelUnavailableError(f"cannot load model {spec.name}: {err}") from None


def _decoder_network(spec: ModelSpec, paths: dict[str, Path]) -> torch.nn.Module:
    """The network of the spec's decoder (``spec.decoder``): the Wan VAE or LightVAE as an
    ``AutoencoderKLWan``, TAEHV/LightTAE as a :class:`~longlive_cli.decoders.taehv.TAEHVDecoder`; tiny random
    ones for tiny-random.

    Raises:
        ModelError: the file does not fit (names it and the first mismatched key).
    """
    from ..decoders.lightvae import load_lightvae
    from ..decoders.taehv import load_taehv, tiny_taehv
    from .vae import load_vae

    if spec.decoder in ("taehv", "lighttae"):
        variant: Literal["taehv", "lighttae"] = "taehv" if spec.decoder == "taehv" else "lighttae"
        return (
            tiny_taehv(0, variant=variant)
            if spec.base is None
            else load_taehv(paths["decoder"], variant=variant)
        )
    if spec.base is None and spec.decoder == "lightvae":  # the same family as the Wan VAE: other tiny weights
        from diffusers import AutoencoderKLWan

        from .vae import tiny_vae_config

        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(1)
            return AutoencoderKLWan(**tiny_vae_config())
    if spec.base is None:
        return build_tiny_random()[1]
    return load_lightvae(paths["decoder"]) if spec.decoder == "lightvae" else load_vae(paths["vae"])


def load_decoder_only(
    spec: ModelSpec, *, device: torch.device | str, offline: bool = False
) -> torch.nn.Module:
    """Just the network of the spec's decoder, in float32 (for ``longlive decode``; wrap it with
    :func:`longlive_cli.decoders.make_decoder`).

    Raises:
        WeightsUnavailableError / ModelUnavailableError: the weights cannot be had or read.
    """
    parts = [p for p in components(spec, for_text=False) if p.role in ("vae", "decoder")]
    paths = fetch_components(spec, parts, offline=offline)
    try:
        return _place(_decoder_network(spec, paths), device, torch.float32)
    except (OSError, ValueError) as err:
        raise ModelUnavailableError(f"cannot load the {spec.decoder} decoder: {err}") from None
