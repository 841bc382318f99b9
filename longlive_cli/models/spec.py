"""Model presets and model spec files: what a model is made of, where its files come from, its numbers.

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

Torch-free: ``longlive validate`` and ``--dry-run`` plan with a spec without loading PyTorch. Loading the
parts is :mod:`longlive_cli.models.loaders`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from ..errors import ModelError
from ..geometry import WAN21, Geometry
from ..hub import Source, fetch, parse_source

DEFAULT_MODEL = "longlive-1.3b"
SPEC_FILE_IN_DIR = "longlive-model.yaml"
#: The samplers a spec may name (the keys of :data:`longlive_cli.samplers.SAMPLERS`; a test keeps them equal).
SAMPLER_NAMES = ("longlive",)


class ModelUnavailableError(ModelError):
    """The chosen model cannot be loaded here; ``str()`` says why and what to do (exit 3)."""


@dataclass(frozen=True)
class SamplerConfig:
    """Sampling hyper-parameters (defaults: LongLive ``configs/longlive_interactive_inference.yaml``).

    ``local_attn_size`` and ``sink_size`` are in latent frames; ``denoising_steps`` are indices into the
    shifted 1000-step table (``warp_denoising_step``). The block size is the model's
    (:attr:`~longlive_cli.geometry.Geometry.frames_per_block`). ``name`` picks the sampler
    (:data:`longlive_cli.samplers.SAMPLERS`; spec-file key ``sampler``).
    """

    name: str = "longlive"
    local_attn_size: int = 12
    sink_size: int = 3
    denoising_steps: tuple[int, ...] = (1000, 750, 500, 250)
    timestep_shift: float = 5.0
    num_train_timesteps: int = 1000
    global_sink: bool = True


@dataclass(frozen=True)
class ModelSpec:
    """Where a model's weights come from and how to sample from it.

    Sources are strings in :mod:`longlive_cli.hub` syntax. ``base`` is a diffusers-layout repo or
    folder (``transformer/config.json``; and ``text_encoder/``, ``tokenizer/``, ``vae/``,
    ``transformer/`` weights where no other source replaces them). ``generator``/``lora`` are the
    official LongLive checkpoint files; ``text_encoder``/``vae`` may be original Wan ``.pth`` files;
    ``tokenizer`` a tokenizer folder. ``base=None`` means: build tiny random weights. ``quantized`` is a
    transformer file written by ``longlive quantize`` (:mod:`longlive_cli.quantize`) with ``scheme``; it
    replaces the base/generator transformer (its config is in the file). ``geometry`` holds the model's
    numbers (fps, block size, strides, native resolution; a spec file sets ``fps``, ``frames_per_block``
    and ``native_resolution``); sampler sizes are in latent frames. ``spec_dir`` is the folder relative
    sources resolve against.
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
    geometry: Geometry = WAN21
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
    "tiny-random": ModelSpec(
        name="tiny-random", base=None, geometry=replace(WAN21, native_resolution=(128, 80))
    ),
}

# Approximate sizes for messages and `longlive download` (from the Hub listings named in the issue
# tracker; files not listed here are reported with their size once downloaded).
KNOWN_SIZES = {
    "Wan-AI/Wan2.1-T2V-1.3B:models_t5_umt5-xxl-enc-bf16.pth": "11.4 GB",
    "Wan-AI/Wan2.1-T2V-1.3B:Wan2.1_VAE.pth": "508 MB",
    "Wan-AI/Wan2.1-T2V-1.3B-Diffusers:text_encoder": "22.7 GB",
    "Efficient-Large-Model/LongLive-1.3B:models/longlive_base.pt": "5.68 GB",
    "Efficient-Large-Model/LongLive-1.3B:models/lora.pt": "2.80 GB",
}

# The dtype the known files are stored in, for what is shown before they are downloaded (`--dry-run`).
KNOWN_DTYPES = {
    "Wan-AI/Wan2.1-T2V-1.3B:models_t5_umt5-xxl-enc-bf16.pth": "bf16",
    "Wan-AI/Wan2.1-T2V-1.3B:Wan2.1_VAE.pth": "float32",
    "Wan-AI/Wan2.1-T2V-1.3B-Diffusers:text_encoder": "float32",
    "Efficient-Large-Model/LongLive-1.3B:models/longlive_base.pt": "float32",
}

_SPEC_KEYS = {f.name for f in fields(ModelSpec)} - {"name", "sampler", "spec_dir", "geometry"}
_SAMPLER_KEYS = {f.name for f in fields(SamplerConfig)} - {"name"} | {"sampler"}
_GEOMETRY_KEYS = {"fps", "frames_per_block", "native_resolution"}  # the numbers a spec file may set


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
    unknown = sorted(set(map(str, data)) - _SPEC_KEYS - _SAMPLER_KEYS - _GEOMETRY_KEYS)
    if unknown:
        allowed = ", ".join(sorted(_SPEC_KEYS | _SAMPLER_KEYS | _GEOMETRY_KEYS))
        raise ModelUnavailableError(f"{path}: unknown key(s) {', '.join(unknown)}. Allowed: {allowed}")
    spec_kw: dict[str, Any] = {k: v for k, v in data.items() if k in _SPEC_KEYS}
    sampler_kw: dict[str, Any] = {k: v for k, v in data.items() if k in _SAMPLER_KEYS}
    if "sampler" in sampler_kw:
        sampler_kw["name"] = sampler_kw.pop("sampler")
        if sampler_kw["name"] not in SAMPLER_NAMES:
            raise ModelUnavailableError(
                f"{path}: sampler: {sampler_kw['name']!r} is not one of {', '.join(SAMPLER_NAMES)}"
            )
    geometry_kw: dict[str, Any] = {k: v for k, v in data.items() if k in _GEOMETRY_KEYS}
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
    if "native_resolution" in geometry_kw:
        geometry_kw["native_resolution"] = tuple(geometry_kw["native_resolution"])
    if "denoising_steps" in sampler_kw:
        sampler_kw["denoising_steps"] = tuple(sampler_kw["denoising_steps"])
    try:
        sampler = SamplerConfig(**sampler_kw)
        geometry = replace(WAN21, **geometry_kw)
        return ModelSpec(
            name=str(path), spec_dir=path.parent.resolve(), sampler=sampler, geometry=geometry, **spec_kw
        )
    except (TypeError, ValueError) as err:
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


def cache_root() -> Path:
    """The project's cache folder: ``$LONGLIVE_CACHE`` or ``~/.cache/longlive-cli``."""
    return Path(os.environ.get("LONGLIVE_CACHE") or Path.home() / ".cache" / "longlive-cli")


def converted_cache_dir() -> Path:
    """Where converted transformers are cached: ``<cache_root>/converted``."""
    return cache_root() / "converted"


def embeddings_cache_dir() -> Path:
    """Where prompt embeddings are cached: ``<cache_root>/embeddings``."""
    return cache_root() / "embeddings"


#: What ``longlive cache`` lists and clears: name -> folder function.
CACHE_FOLDERS = {"converted": converted_cache_dir, "embeddings": embeddings_cache_dir}


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
