"""Model presets, model spec files, and loading the parts a model is made of.

A preset is a built-in :class:`ModelSpec`; ``--model`` also takes a spec file (YAML) or a folder
holding ``longlive-model.yaml``. Sources (Hub references or local paths) are described in
:mod:`longlive_cli.hub`.

``longlive-1.3b`` (the default) is the official release: NVlabs/LongLive v1.0 README and
``configs/longlive_interactive_inference.yaml`` name the Hub repo ``Efficient-Large-Model/LongLive-1.3B``
with ``models/longlive_base.pt`` (generator) and ``models/lora.pt`` (LoRA rank 256, alpha 256), on
the Wan2.1-T2V-1.3B base. To download the least, it takes the UMT5 encoder (bf16 ``.pth``), the
tokenizer and the VAE from the original ``Wan-AI/Wan2.1-T2V-1.3B`` repo (the paths LongLive's
``utils/wan_wrapper.py`` loads) and only ``transformer/config.json`` from the Diffusers base.

``tiny-random`` is the same architecture family at toy size with random weights built in-process:
no download, noise-like video; for trying the tool and for tests.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from ..hub import Source, fetch, parse_source
from ..sampler import SamplerConfig

if TYPE_CHECKING:  # the heavy libraries load only when a model is built
    from diffusers import AutoencoderKLWan, WanTransformer3DModel

    from ..text import TextEncoder
    from .transformer import CausalWanTransformer

DEFAULT_MODEL = "longlive-1.3b"
SPEC_FILE_IN_DIR = "longlive-model.yaml"


class ModelUnavailableError(RuntimeError):
    """The chosen model cannot be loaded here; ``str()`` says why and what to do."""


@dataclass(frozen=True)
class ModelSpec:
    """Where a model's weights come from and how to sample from it.

    Sources are strings in :mod:`longlive_cli.hub` syntax. ``base`` is a diffusers-layout repo or
    folder (``transformer/config.json``; and ``text_encoder/``, ``tokenizer/``, ``vae/``,
    ``transformer/`` weights where no other source replaces them). ``generator``/``lora`` are the
    official LongLive checkpoint files; ``text_encoder``/``vae`` may be original Wan ``.pth`` files;
    ``tokenizer`` a tokenizer folder. ``base=None`` means: build tiny random weights. ``quantized`` is a
    transformer file written by ``longlive quantize`` (:mod:`longlive_cli.quantize`) with ``scheme``; it
    replaces the base/generator transformer (its config is in the file). Sampler sizes are
    in latent frames; ``native_resolution`` is ``(width, height)`` in pixels, used when a storyboard
    gives none. ``spec_dir`` is the folder relative sources resolve against.
    """

    name: str
    base: str | None
    generator: str | None = None
    generator_key: str = "generator"
    lora: str | None = None
    lora_rank: int = 256
    lora_alpha: float = 256
    text_encoder: str | None = None
    tokenizer: str | None = None
    vae: str | None = None
    sampler: SamplerConfig = field(default_factory=SamplerConfig)
    fps: int = 16
    native_resolution: tuple[int, int] = (832, 480)
    quantized: str | None = None
    scheme: str | None = None
    spec_dir: Path | None = None


PRESETS: dict[str, ModelSpec] = {
    "longlive-1.3b": ModelSpec(
        name="longlive-1.3b",
        base="Wan-AI/Wan2.1-T2V-1.3B-Diffusers",
        generator="Efficient-Large-Model/LongLive-1.3B:models/longlive_base.pt",
        lora="Efficient-Large-Model/LongLive-1.3B:models/lora.pt",
        text_encoder="Wan-AI/Wan2.1-T2V-1.3B:models_t5_umt5-xxl-enc-bf16.pth",
        tokenizer="Wan-AI/Wan2.1-T2V-1.3B:google/umt5-xxl",
        vae="Wan-AI/Wan2.1-T2V-1.3B:Wan2.1_VAE.pth",
    ),
    # Small native size: the Wan VAE decoder's causal 3-D convolutions are slow on CPU at 832x480.
    "tiny-random": ModelSpec(name="tiny-random", base=None, native_resolution=(128, 80)),
}

# Approximate sizes for messages and `longlive download` (from the Hub listings named in the issue
# tracker; files not listed here are reported with their size once downloaded).
KNOWN_SIZES = {
    "Wan-AI/Wan2.1-T2V-1.3B:models_t5_umt5-xxl-enc-bf16.pth": "11.4 GB",
    "Wan-AI/Wan2.1-T2V-1.3B:Wan2.1_VAE.pth": "508 MB",
    "Wan-AI/Wan2.1-T2V-1.3B-Diffusers:text_encoder": "22.7 GB",
}

_SPEC_KEYS = {f.name for f in fields(ModelSpec)} - {"name", "sampler", "spec_dir"}
_SAMPLER_KEYS = {f.name for f in fields(SamplerConfig)}


def load_spec(path: str | Path) -> ModelSpec:
    """Read a model spec file (YAML mapping; keys as in :class:`ModelSpec` and :class:`SamplerConfig`).

    Raises:
        ModelUnavailableError: unreadable file, not a mapping, unknown key or a value of the wrong
            type; the message names the file and the key.
    """
    import yaml

    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:
        raise ModelUnavailableError(f"cannot read model spec {path}: {err}") from None
    if not isinstance(data, dict):
        raise ModelUnavailableError(f"{path}: a model spec is a YAML mapping (base:, generator:, ...)")
    unknown = sorted(set(map(str, data)) - _SPEC_KEYS - _SAMPLER_KEYS)
    if unknown:
        allowed = ", ".join(sorted(_SPEC_KEYS | _SAMPLER_KEYS))
        raise ModelUnavailableError(f"{path}: unknown key(s) {', '.join(unknown)}. Allowed: {allowed}")
    spec_kw: dict[str, Any] = {k: v for k, v in data.items() if k in _SPEC_KEYS}
    sampler_kw: dict[str, Any] = {k: v for k, v in data.items() if k in _SAMPLER_KEYS}
    if "base" not in spec_kw:
        raise ModelUnavailableError(f"{path}: 'base' is required (a diffusers-layout Hub repo or folder)")
    keys = (
        "base",
        "generator",
        "lora",
        "text_encoder",
        "tokenizer",
        "vae",
        "generator_key",
        "quantized",
        "scheme",
    )
    for key in keys:
        if spec_kw.get(key) is not None and not isinstance(spec_kw[key], str):
            raise ModelUnavailableError(f"{path}: {key} must be a string, got {spec_kw[key]!r}")
    if (spec_kw.get("quantized") is None) != (spec_kw.get("scheme") is None):
        raise ModelUnavailableError(f"{path}: 'quantized' and 'scheme' go together")
    if spec_kw.get("quantized") is not None and (spec_kw.get("generator") or spec_kw.get("lora")):
        raise ModelUnavailableError(f"{path}: a 'quantized' transformer replaces 'generator' and 'lora'")
    if "native_resolution" in spec_kw:
        spec_kw["native_resolution"] = tuple(spec_kw["native_resolution"])
    if "denoising_steps" in sampler_kw:
        sampler_kw["denoising_steps"] = tuple(sampler_kw["denoising_steps"])
    try:
        sampler = SamplerConfig(**sampler_kw)
        return ModelSpec(name=str(path), spec_dir=path.parent.resolve(), sampler=sampler, **spec_kw)
    except TypeError as err:
        raise ModelUnavailableError(f"{path}: {err}") from None


def resolve_model(name: str) -> ModelSpec:
    """The spec for a preset name, a spec file, or a folder holding ``longlive-model.yaml``.

    Raises:
        ModelUnavailableError: unknown name (the message lists the presets) or a bad spec file.
    """
    if name in PRESETS:
        return PRESETS[name]
    path = Path(name).expanduser()
    if path.is_dir() and (path / SPEC_FILE_IN_DIR).is_file():
        return load_spec(path / SPEC_FILE_IN_DIR)
    if path.is_file():
        return load_spec(path)
    raise ModelUnavailableError(
        f"unknown model {name!r}: not a preset ({', '.join(PRESETS)}), nor a model spec file, nor a "
        f"folder with {SPEC_FILE_IN_DIR}."
    )


@dataclass(frozen=True)
class Component:
    """One thing to fetch for a model: a file or a folder."""

    role: str
    source: Source
    folder: bool = False

    @property
    def size(self) -> str | None:
        return KNOWN_SIZES.get(str(self.source))


def components(spec: ModelSpec, *, for_text: bool = True, for_video: bool = True) -> list[Component]:
    """What ``spec`` needs, in load order: only what is used (no base transformer with a ``generator``).

    ``for_text``: the text encoder and tokenizer; ``for_video``: transformer and VAE.
    """

    def src(value: str) -> Source:
        return parse_source(value, relative_to=spec.spec_dir)

    if spec.base is None:  # tiny random weights; a quantized transformer file is the only thing read
        return [Component("quantized", src(spec.quantized))] if spec.quantized and for_video else []

    base = src(spec.base)

    def in_base(sub: str) -> Source:
        return Source(base.repo, sub) if base.repo is not None else Source(None, str(Path(base.path) / sub))

    parts: list[Component] = []
    if for_text:
        if spec.text_encoder:
            enc = src(spec.text_encoder)
            parts.append(Component("text_encoder", enc, folder=not enc.path.endswith((".pth", ".pt"))))
        else:
            parts.append(Component("text_encoder", in_base("text_encoder"), folder=True))
        parts.append(
            Component("tokenizer", src(spec.tokenizer) if spec.tokenizer else in_base("tokenizer"), True)
        )
    if for_video:
        if spec.quantized:  # the file replaces the base's transformer (config included) and the generator
            parts.append(Component("quantized", src(spec.quantized)))
        elif spec.generator:
            parts.append(Component("transformer_config", in_base("transformer/config.json")))
            parts.append(Component("generator", src(spec.generator)))
            if spec.lora:
                parts.append(Component("lora", src(spec.lora)))
        else:
            parts.append(Component("transformer_config", in_base("transformer/config.json")))
            parts.append(Component("transformer", in_base("transformer"), folder=True))
        if spec.vae:
            vae = src(spec.vae)
            parts.append(Component("vae", vae, folder=not vae.path.endswith((".pth", ".pt", ".safetensors"))))
        else:
            parts.append(Component("vae", in_base("vae"), folder=True))
    return parts


def fetch_components(spec: ModelSpec, parts: list[Component], *, offline: bool) -> dict[str, Path]:
    """Local paths of ``parts`` (downloaded into the Hub cache when needed), keyed by role.

    Raises:
        longlive_cli.hub.WeightsUnavailableError: a part cannot be had (names it and the ways out).
    """
    model = spec.name if spec.name in PRESETS else f"--model {spec.name}"
    return {
        p.role: fetch(p.source, offline=offline, folder=p.folder, size=p.size, model=model) for p in parts
    }


def converted_cache_dir() -> Path:
    """Where converted transformers are cached: ``$LONGLIVE_CACHE`` or ``~/.cache/longlive-cli``."""
    return Path(os.environ.get("LONGLIVE_CACHE", Path.home() / ".cache" / "longlive-cli")) / "converted"


@dataclass
class Model:
    """A loaded video model: the causal transformer, the VAE and the spec they came from."""

    spec: ModelSpec
    transformer: CausalWanTransformer
    vae: AutoencoderKLWan


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

    from ..decode import tiny_vae_config
    from ..text import build_tiny_text_encoder

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
    from ..text import TextEncoder

    if spec.base is None:
        from ..text import build_tiny_text_encoder

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
    """Load the spec's causal transformer (generator weights, LoRA merged) and VAE on ``device``.

    The transformer runs in ``dtype``; the VAE too. Converted generator weights are cached under
    :func:`converted_cache_dir` so later runs memory-map them.

    Raises:
        WeightsUnavailableError / ModelUnavailableError: the weights cannot be had or read.
    """
    from .transformer import CausalWanTransformer

    if spec.base is None:
        wan, vae, _ = build_tiny_random()
        if spec.quantized:
            from ..quantize import load_quantized

            path = fetch_components(spec, components(spec, for_text=False), offline=offline)["quantized"]
            wan = load_quantized(path, scheme=spec.scheme, device=device, dtype=dtype)
    else:
        from diffusers import WanTransformer3DModel

        from ..decode import load_vae
        from .checkpoints import CheckpointError, load_transformer

        paths = fetch_components(spec, components(spec, for_text=False), offline=offline)
        try:
            if "quantized" in paths:
                from ..quantize import load_quantized

                wan = load_quantized(paths["quantized"], scheme=spec.scheme, device=device, dtype=dtype)
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
                )
            else:
                wan = WanTransformer3DModel.from_pretrained(
                    paths["transformer"], torch_dtype=dtype, low_cpu_mem_usage=False
                )
            vae = load_vae(paths["vae"])
        except (CheckpointError, OSError, ValueError) as err:
            raise ModelUnavailableError(f"cannot load model {spec.name}: {err}") from None
    # A quantized transformer is built on ``device`` in ``dtype`` already (torchao tensors are not cast).
    transformer = CausalWanTransformer(wan if spec.quantized else _place(wan, device, dtype))
    return Model(spec=spec, transformer=transformer, vae=_place(vae, device, dtype))


def load_vae_only(spec: ModelSpec, *, device: torch.device | str, offline: bool = False) -> AutoencoderKLWan:
    """Just the spec's VAE, in float32 (for ``longlive decode``).

    Raises:
        WeightsUnavailableError / ModelUnavailableError: the weights cannot be had or read.
    """
    if spec.base is None:
        return _place(build_tiny_random()[1], device, torch.float32)
    from ..decode import load_vae

    vae_part = [p for p in components(spec, for_text=False) if p.role == "vae"]
    path = fetch_components(spec, vae_part, offline=offline)["vae"]
    try:
        return _place(load_vae(path), device, torch.float32)
    except (OSError, ValueError) as err:
        raise ModelUnavailableError(f"cannot load the VAE from {path}: {err}") from None
