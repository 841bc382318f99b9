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

``longlive-1.3b-infinite`` is the same release with relative RoPE (NVlabs/LongLive
``configs/longlive_inference_infinity.yaml``, ``use_infinite_attention: true``: same generator, LoRA, window,
sink and steps): the temporal RoPE index of a frame is its rank in the attention window, so videos are not
limited by the 1024-entry table (docs/design.md "Relative RoPE reference semantics").

The other presets are the released checkpoints of the same family, each read from its official file
and entry, on the same Wan2.1-T2V-1.3B files (sources checked against the authors' repositories and
model cards; docs/models.md lists them with sizes and licences):

* ``rolling-forcing``: TencentARC/RollingForcing a1477d0 README ("Download checkpoints",
  ``huggingface-cli download TencentARC/RollingForcing checkpoints/rolling_forcing_dmd.pt``) and
  ``inference.py`` (``--use_ema`` reads ``generator_ema``, ``_fsdp_wrapped_module.`` removed);
  ``configs/rolling_forcing_dmd.yaml``: ``denoising_step_list [1000, 800, 600, 400, 200]``,
  ``timestep_shift 5.0``, ``num_frame_per_block 3``; the Rolling Forcing window sampler.
* ``causal-forcing-long``: thu-ml/Causal-Forcing 1fc7bbc ``long_video/README.md`` (``hf download
  zhuhz22/Causal-Forcing chunkwise/longvideo.pt``, run with ``--use_ema``: entry ``generator_ema``) and
  ``long_video/configs/rolling_forcing_dmd.yaml`` (``[1000, 750, 500, 250]``, shift 5): Rolling
  Forcing's sampler with 4 steps.
* ``self-forcing``: guandeh17/Self-Forcing 33593df README (``huggingface-cli download gdhe17/Self-Forcing
  checkpoints/self_forcing_dmd.pt``, ``inference.py --use_ema``: entry ``generator_ema``, loaded
  strictly, keys ``model.<Wan key>``); ``configs/self_forcing_dmd.yaml`` (``[1000, 750, 500, 250]``,
  shift 5, 3 frames per block) sets no ``local_attn_size``, so ``utils/wan_wrapper.py``'s defaults
  ``local_attn_size=-1, sink_size=0`` hold: a 32760-token (21-frame) cache, no sink
  (``pipeline/causal_inference.py``). Here: LongLive's sampler with ``local_attn_size: 21``,
  ``sink_size: 0``, which equals that up to 21 latent frames and then rolls as the official code
  does with ``local_attn_size: 21``.
* ``causal-forcing``: thu-ml/Causal-Forcing README ("Chunk-wise model": ``zhuhz22/Causal-Forcing
  chunkwise/causal_forcing.pt`` run without ``--use_ema``: entry ``generator``; ``inference.py``
  strips ``model._fsdp_wrapped_module.``) and ``configs/causal_forcing_dmd_chunkwise.yaml`` (the same
  schedule, no ``local_attn_size``; the inference pipeline is Self-Forcing's): the ``self-forcing``
  sampler settings.

``tiny-random`` is the same architecture family at toy size with random weights built in-process:
no download, noise-like video; for trying the tool and for tests.

``longlive-2.0-5b`` is LongLive 2.0 (architecture ``longlive-2.0``, :mod:`longlive_cli.architectures`):
NVlabs/LongLive
``main`` README ("Models": ``Efficient-Large-Model/LongLive-2.0-5B``; quick start
``merged_checkpoint_path = "LongLive-2.0-5B/model_bf16.pt"``, loaded by ``utils/inference_utils.py``
``load_generator_checkpoint``: entry ``generator``, keys ``model.<Wan key>``, strict) on the Wan2.2-TI2V-5B
base,
whose diffusers repo ``Wan-AI/Wan2.2-TI2V-5B-Diffusers`` gives the transformer config, the UMT5 text encoder,
the
tokenizer and the Wan2.2 VAE. The two-file layout of the official configs (``configs/inference.yaml``:
``generator_ckpt`` + ``lora_ckpt`` with ``adapter: {rank: 128, alpha: 128}``) is a spec file with
``generator``,
``lora``, ``lora_rank: 128``, ``lora_alpha: 128``. The NVFP4 releases (:data:`NVFP4_RELEASES`) are refused
with
what they need. ``tiny-random-2`` is the 2.0 architecture at toy size with random weights (a tiny Wan2.2-style
VAE with z_dim 48).

Any model also takes user LoRAs (:class:`LoraSpec`: spec key ``loras``, ``--lora SOURCE[:SCALE]``), merged
into the transformer at load time (:mod:`longlive_cli.models.user_loras`).

Torch-free: ``longlive validate`` and ``--dry-run`` plan with a spec without loading PyTorch. Loading the
parts is :mod:`longlive_cli.models.loaders`.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Protocol

from ..architectures import DEFAULT_ARCHITECTURE, LONGLIVE_2, SCENE_CUT_PREFIX
from ..errors import ModelError
from ..geometry import WAN21, WAN22, Geometry, relative_rope
from ..hub import Source, fetch, parse_source
from ..registry import (
    Architecture,
    SamplerInfo,
    UnknownComponentError,
    architecture_info,
    decoder_info,
    known_decoders,
    known_samplers,
    sampler_info,
)

DEFAULT_MODEL = "longlive-1.3b"
SPEC_FILE_IN_DIR = "longlive-model.yaml"
#: Temporal RoPE kinds (spec key ``rope``, ``generate --rope``): ``absolute`` indexes the model's table by the
#: latent frame (at most 1024 frames, about 255 s); ``relative`` by the frame's rank in the attention window.
ROPE_NAMES = ("absolute", "relative")
#: ``--quantize`` -> the quantization scheme (:mod:`longlive_cli.models.int8`, spec key ``scheme``): ``int8``:
#: int8 weights and int8 activations quantized per token at run time (``w8a8``); ``int8-weights``: int8
#: weights only (``w8``); ``fp8``: float8 weights and activations (``fp8``; CUDA, compute capability >= 8.9).
QUANTIZE_SCHEMES = {"int8": "w8a8", "int8-weights": "w8", "fp8": "fp8"}
#: When a transition re-caches (spec key ``transition_recache``; see :class:`SamplerConfig`).
TRANSITION_RECACHE = ("every", "first", "none")


class ModelUnavailableError(ModelError):
    """The chosen model cannot be loaded here; ``str()`` says why and what to do (exit 3)."""


@dataclass(frozen=True)
class SamplerConfig:
    """Sampling hyper-parameters (defaults: LongLive ``configs/longlive_interactive_inference.yaml``).

    ``local_attn_size`` and ``sink_size`` are in latent frames; ``denoising_steps`` are indices into the
    shifted 1000-step table (``warp_denoising_step``). The block size is the model's
    (:attr:`~longlive_cli.geometry.Geometry.frames_per_block`). ``name`` picks the sampler
    (:func:`longlive_cli.registry.sampler_info`; spec-file key ``sampler``). ``rope`` is the temporal RoPE
    index (:data:`ROPE_NAMES`): ``absolute`` (the latent frame) or ``relative`` (the frame's rank among the
    cached frames it attends to; LongLive's sampler only). ``transition_recache``: when the KV cache is
    re-cached during a transition (:data:`TRANSITION_RECACHE`): ``every`` block whose conditioning changes
    (N + 1 re-caches for an N-block transition, as Scope does at every step), ``first`` (one, at the switch,
    as a hard switch), or ``none``.

    LongLive 2.0 (``name: longlive2``; NVlabs/LongLive ``main`` ``configs/inference.yaml``):
    ``sampling_steps`` flow-UniPC steps with ``timestep_shift`` (``denoising_steps`` is not read);
    ``multi_shot_sink`` pins the first block of each shot as a second sink behind the global one;
    ``shot_clean_recache`` resets the cache to [global sink | the shot's first block] at a cut;
    ``scene_cut_prefix`` is prepended to the first block's prompt of each new shot; ``shot_rope_offset``
    latent frames are added to the temporal RoPE index per shot (``multi_shot_rope_offset``). LongLive 1.0's
    samplers ignore these.

    Raises:
        ValueError: an unknown ``rope`` or ``transition_recache``.
    """

    name: str = "longlive"
    rope: str = "absolute"
    transition_recache: str = "first"

    def __post_init__(self) -> None:
        if self.rope not in ROPE_NAMES:
            raise ValueError(f"rope {self.rope!r} is not one of {', '.join(ROPE_NAMES)}")
        if self.transition_recache not in TRANSITION_RECACHE:
            allowed = ", ".join(TRANSITION_RECACHE)
            raise ValueError(f"transition_recache {self.transition_recache!r} is not one of {allowed}")

    local_attn_size: int = 12
    sink_size: int = 3
    denoising_steps: tuple[int, ...] = (1000, 750, 500, 250)
    timestep_shift: float = 5.0
    num_train_timesteps: int = 1000
    global_sink: bool = True
    sampling_steps: int = 4
    multi_shot_sink: bool = True
    shot_clean_recache: bool = False
    scene_cut_prefix: str = SCENE_CUT_PREFIX
    shot_rope_offset: int = 8


@dataclass(frozen=True)
class LoraSpec:
    """A user LoRA merged into the transformer at load time: ``W += scale * (alpha / rank) * B @ A``.

    ``source`` is a weight source (:mod:`longlive_cli.hub`: ``owner/repo:path/in/repo`` or a local file,
    relative paths resolving against the spec file's folder); ``scale`` multiplies the file's own
    ``alpha / rank`` (a number; 0 disables it, negative values subtract it).
    """

    source: str
    scale: float = 1.0

    def __str__(self) -> str:
        return self.source if self.scale == 1.0 else f"{self.source}:{self.scale:g}"


#: File names that end a weight file (a ``--lora`` value ending ``<file>:<not a number>`` is a bad scale).
WEIGHT_SUFFIXES = (".safetensors", ".pt", ".pth", ".bin", ".ckpt")


def parse_lora(value: str) -> LoraSpec:
    """``SOURCE[:SCALE]`` (the ``--lora`` form) as a :class:`LoraSpec`.

    The text after the last ``:`` is the scale when it reads as a number (``style.safetensors:0.8``,
    ``owner/repo:loras/style.safetensors:0.8``); otherwise the whole value is the source and the scale 1
    (``owner/repo:loras/style.safetensors``).

    Raises:
        ValueError: an empty source, a scale that is not finite, or one that is not a number after a weight
            file's name (``style.pt:abc``).
    """
    value = str(value).strip()
    source, scale = value, 1.0
    head, sep, tail = value.rpartition(":")
    if sep:
        try:
            scale = float(tail)
        except ValueError:
            if head.strip().lower().endswith(WEIGHT_SUFFIXES):  # `style.pt:abc`: a scale meant, not a path
                raise ValueError(
                    f"LoRA {value!r}: the scale {tail.strip()!r} is not a number; write SOURCE:SCALE with a "
                    "number, e.g. style.safetensors:0.8"
                ) from None
        else:
            source = head.strip()
    if not source:
        raise ValueError(f"LoRA {value!r}: no source before the scale (SOURCE[:SCALE])")
    if not math.isfinite(scale):
        raise ValueError(f"LoRA {value!r}: the scale must be a finite number, got {scale}")
    return LoraSpec(source, scale)


def _as_lora(item: Any) -> LoraSpec:
    """A spec file's ``loras`` entry (a string ``SOURCE[:SCALE]`` or ``{source, scale}``) as a LoraSpec."""
    if isinstance(item, LoraSpec):
        return item
    if isinstance(item, str):
        return parse_lora(item)
    if isinstance(item, dict):
        unknown = sorted(set(map(str, item)) - {"source", "scale"})
        if unknown or not isinstance(item.get("source"), str) or not item["source"].strip():
            raise ValueError(f"a LoRA is {{source: ..., scale: ...}} with a source string, got {item!r}")
        scale = item.get("scale", 1.0)
        if isinstance(scale, bool) or not isinstance(scale, int | float) or not math.isfinite(scale):
            raise ValueError(f"LoRA {item['source']!r}: scale must be a finite number, got {scale!r}")
        return LoraSpec(item["source"].strip(), float(scale))
    raise ValueError(f"a LoRA is a string SOURCE[:SCALE] or {{source: ..., scale: ...}}, got {item!r}")


@dataclass(frozen=True)
class ModelSpec:
    """Where a model's weights come from and how to sample from it.

    Sources are strings in :mod:`longlive_cli.hub` syntax. ``base`` is a diffusers-layout repo or
    folder (``transformer/config.json``; and ``text_encoder/``, ``tokenizer/``, ``vae/``,
    ``transformer/`` weights where no other source replaces them). ``generator``/``lora`` are the
    official checkpoint files (``generator_key``: the entry of the generator file to read); ``loras`` are user
    LoRAs merged on top (:class:`LoraSpec`); ``text_encoder``/``vae`` may be original Wan ``.pth`` files;
    ``tokenizer`` a tokenizer folder. ``architecture`` is the transformer family
    (:func:`longlive_cli.registry.architecture_info`: its latent space, which the decoder must read).
    ``decoder`` names the streaming decoder (:func:`longlive_cli.registry.decoder_info`) and
    ``decoder_weights`` its file (None: the decoder's default). ``base=None`` means: build tiny random
    weights. ``quantized`` is a transformer file written by ``longlive quantize``
    (:mod:`longlive_cli.quantize`) with ``scheme``; it replaces the base/generator transformer (its config is
    in the file). ``geometry`` holds the model's numbers (fps, block size, strides, native resolution; a spec
    file sets ``fps``, ``frames_per_block`` and ``native_resolution``); sampler sizes are in latent frames.
    ``spec_dir`` is the folder relative sources resolve against.
    """

    name: str
    base: str | None
    generator: str | None = None
    generator_key: str = "generator"
    lora: str | None = None
    lora_rank: int = 256
    lora_alpha: float = 256
    loras: tuple[LoraSpec, ...] = ()
    text_encoder: str | None = None
    tokenizer: str | None = None
    vae: str | None = None
    sampler: SamplerConfig = field(default_factory=SamplerConfig)
    geometry: Geometry = WAN21
    decoder: str = "wan"
    decoder_weights: str | None = None
    quantized: str | None = None
    scheme: str | None = None
    spec_dir: Path | None = None
    architecture: str = DEFAULT_ARCHITECTURE


# The Wan2.1-T2V-1.3B files every released checkpoint of this family runs on (see the module docs).
_WAN21_FILES: dict[str, Any] = dict(
    base="Wan-AI/Wan2.1-T2V-1.3B-Diffusers",
    text_encoder="Wan-AI/Wan2.1-T2V-1.3B:models_t5_umt5-xxl-enc-bf16.pth",
    tokenizer="Wan-AI/Wan2.1-T2V-1.3B:google/umt5-xxl",
    vae="Wan-AI/Wan2.1-T2V-1.3B:Wan2.1_VAE.pth",
)
_LONGLIVE = ModelSpec(
    name="longlive-1.3b",
    generator="Efficient-Large-Model/LongLive-1.3B:models/longlive_base.pt",
    lora="Efficient-Large-Model/LongLive-1.3B:models/lora.pt",
    **_WAN21_FILES,
)
#: The preset to name when a storyboard is too long for absolute RoPE.
INFINITE_MODEL = "longlive-1.3b-infinite"
#: LongLive 2.0's sampler settings (``configs/inference.yaml``;
#: :data:`longlive_cli.architectures.LONGLIVE_2`).
_LONGLIVE_2_SAMPLER = SamplerConfig(**LONGLIVE_2.sampler_defaults)
#: Self-Forcing's inference cache (``utils/wan_wrapper.py`` defaults): 21 latent frames, no sink.
_SELF_FORCING_SAMPLER = SamplerConfig(local_attn_size=21, sink_size=0)

PRESETS: dict[str, ModelSpec] = {
    "longlive-1.3b": _LONGLIVE,
    INFINITE_MODEL: replace(
        _LONGLIVE,
        name=INFINITE_MODEL,
        sampler=replace(_LONGLIVE.sampler, rope="relative"),
        geometry=relative_rope(_LONGLIVE.geometry),
    ),
    "rolling-forcing": ModelSpec(
        name="rolling-forcing",
        generator="TencentARC/RollingForcing:checkpoints/rolling_forcing_dmd.pt",
        generator_key="generator_ema",
        sampler=SamplerConfig(name="rolling-forcing", denoising_steps=(1000, 800, 600, 400, 200)),
        **_WAN21_FILES,
    ),
    "causal-forcing-long": ModelSpec(
        name="causal-forcing-long",
        generator="zhuhz22/Causal-Forcing:chunkwise/longvideo.pt",
        generator_key="generator_ema",
        sampler=SamplerConfig(name="rolling-forcing", denoising_steps=(1000, 750, 500, 250)),
        **_WAN21_FILES,
    ),
    "self-forcing": ModelSpec(
        name="self-forcing",
        generator="gdhe17/Self-Forcing:checkpoints/self_forcing_dmd.pt",
        generator_key="generator_ema",
        sampler=_SELF_FORCING_SAMPLER,
        **_WAN21_FILES,
    ),
    "causal-forcing": ModelSpec(
        name="causal-forcing",
        generator="zhuhz22/Causal-Forcing:chunkwise/causal_forcing.pt",
        generator_key="generator",
        sampler=_SELF_FORCING_SAMPLER,
        **_WAN21_FILES,
    ),
    # Small native size: the Wan VAE decoder's causal 3-D convolutions are slow on CPU at 832x480.
    "tiny-random": ModelSpec(
        name="tiny-random", base=None, geometry=replace(WAN21, native_resolution=(128, 80))
    ),
    "longlive-2.0-5b": ModelSpec(
        name="longlive-2.0-5b",
        architecture=LONGLIVE_2.name,
        base=LONGLIVE_2.base_repo,
        generator="Efficient-Large-Model/LongLive-2.0-5B:model_bf16.pt",
        generator_key="generator",
        lora_rank=128,
        lora_alpha=128,
        sampler=_LONGLIVE_2_SAMPLER,
        geometry=WAN22,
    ),
    "tiny-random-2": ModelSpec(
        name="tiny-random-2",
        architecture=LONGLIVE_2.name,
        base=None,
        sampler=_LONGLIVE_2_SAMPLER,
        geometry=replace(WAN22, native_resolution=(128, 64)),
    ),
}

#: The NVFP4 releases of LongLive 2.0 (NVlabs/LongLive README "Models"; ``docs/getting_started.md`` "NVFP4
#: Inference": ``model_te.pt`` for TransformerEngine, ``model_4o6.pt`` for FourOverSix), refused: they need
#: the
#: official repo's NVFP4 kernels, which this project does not ship.
NVFP4_RELEASES = {
    "longlive-2.0-5b-nvfp4-s4": "Efficient-Large-Model/LongLive-2.0-5B-NVFP4-S4",
    "longlive-2.0-5b-nvfp4-s2": "Efficient-Large-Model/LongLive-2.0-5B-NVFP4-S2",
}

# Approximate sizes for messages and `longlive download`, as the Hub's file pages state them; files not
# listed here are reported with their size once downloaded.
KNOWN_SIZES = {
    "Wan-AI/Wan2.1-T2V-1.3B:models_t5_umt5-xxl-enc-bf16.pth": "11.4 GB",
    "Wan-AI/Wan2.1-T2V-1.3B:Wan2.1_VAE.pth": "508 MB",
    "Wan-AI/Wan2.1-T2V-1.3B-Diffusers:text_encoder": "22.7 GB",
    # huggingface.co/TencentARC/RollingForcing/blob/main/checkpoints/rolling_forcing_dmd.pt ("17 GB")
    "TencentARC/RollingForcing:checkpoints/rolling_forcing_dmd.pt": "17 GB",
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
        _check_declared(path, "sampler", sampler_kw["name"], sampler_info)
    geometry_kw: dict[str, Any] = {k: v for k, v in data.items() if k in _GEOMETRY_KEYS}
    _check_sources(path, spec_kw)
    _check_declared(path, "decoder", spec_kw.get("decoder", "wan"), decoder_info)
    _check_declared(
        path, "architecture", spec_kw.get("architecture", DEFAULT_ARCHITECTURE), architecture_info
    )
    if "loras" in spec_kw:
        spec_kw["loras"] = _spec_loras(path, spec_kw["loras"], quantized=spec_kw.get("quantized") is not None)
    if "native_resolution" in geometry_kw:
        geometry_kw["native_resolution"] = tuple(geometry_kw["native_resolution"])
    if "denoising_steps" in sampler_kw:
        sampler_kw["denoising_steps"] = tuple(sampler_kw["denoising_steps"])
    arch = _spec_architecture(path, spec_kw, sampler_kw)
    try:
        sampler = SamplerConfig(**{**arch.sampler_defaults, **sampler_kw})
        geometry = replace(arch.geometry, **geometry_kw)
        spec = ModelSpec(
            name=str(path), spec_dir=path.parent.resolve(), sampler=sampler, geometry=geometry, **spec_kw
        )
    except (TypeError, ValueError) as err:
        raise ModelUnavailableError(f"{path}: {err}") from None
    problem = _number_problem(sampler, geometry)
    if problem is not None:
        raise ModelUnavailableError(f"{path}: {problem}")
    try:
        return with_rope(spec, sampler.rope)
    except ValueError as err:
        raise ModelUnavailableError(f"{path}: {err}") from None


def _check_declared(path: Path, key: str, name: Any, lookup: Any) -> None:
    """A spec file's component name (``sampler``, ``decoder``, ``architecture``) names a declared one.

    Raises:
        ModelUnavailableError: not a string, or unknown (the message lists the known ones).
        ComponentLoadError: its plugin fails to load.
    """
    if not isinstance(name, str):
        raise ModelUnavailableError(f"{path}: {key} must be a string, got {name!r}")
    try:
        lookup(name)
    except UnknownComponentError as err:
        raise ModelUnavailableError(f"{path}: {key}: {err}") from None


def _spec_architecture(path: Path, spec_kw: dict[str, Any], sampler_kw: dict[str, Any]) -> Architecture:
    """A spec file's ``architecture`` (default ``longlive-1.0``; already checked to be declared), checked
    against its ``sampler``: LongLive 2.0 runs its own sampler (``longlive2``), and that sampler runs only
    LongLive 2.0."""
    name = spec_kw.get("architecture", DEFAULT_ARCHITECTURE)
    arch = architecture_info(name)
    sampler = sampler_kw.get("name", arch.sampler)
    if (sampler == "longlive2") != (arch.sampler == "longlive2"):
        raise ModelUnavailableError(
            f"{path}: sampler: {sampler} does not run architecture {name} (it runs {arch.sampler})"
        )
    return arch


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _number_problem(sampler: SamplerConfig, geometry: Geometry) -> str | None:
    """What is wrong with a spec file's numbers, in words (None: nothing), so that a bad value is reported
    when the spec is read (exit 3), not when generation or a storyboard meets it."""
    width_height = geometry.native_resolution
    multiple = geometry.pixel_multiple
    if len(width_height) != 2 or not all(
        _is_int(v) and multiple <= v <= 4096 and v % multiple == 0 for v in width_height
    ):
        return (
            f"native_resolution: {list(width_height)} is not [width, height] in pixels, each a multiple of "
            f"{multiple} from {multiple} to 4096 (Wan2.1: [832, 480])"
        )
    if not _is_int(sampler.local_attn_size) or sampler.local_attn_size < 1:
        return f"local_attn_size: {sampler.local_attn_size!r} must be a positive number of latent frames (12)"
    if not _is_int(sampler.sink_size) or not 0 <= sampler.sink_size < sampler.local_attn_size:
        return (
            f"sink_size: {sampler.sink_size!r} must be a whole number of latent frames from 0 to "
            f"local_attn_size - 1 ({sampler.local_attn_size - 1}); LongLive uses 3"
        )
    steps = sampler.denoising_steps
    if not steps or not all(_is_int(t) and 0 < t <= sampler.num_train_timesteps for t in steps):
        return (
            f"denoising_steps: {list(steps)} must be timesteps from 1 to num_train_timesteps "
            f"({sampler.num_train_timesteps}), e.g. [1000, 750, 500, 250]"
        )
    shift = sampler.timestep_shift
    if (
        isinstance(shift, bool)
        or not isinstance(shift, int | float)
        or not shift > 0
        or shift == float("inf")
    ):
        return f"timestep_shift: {shift!r} must be a positive number (5.0)"
    return None


def _check_sources(path: Path, spec_kw: dict[str, Any]) -> None:
    """A spec file's weight sources: ``base`` present, every source a string, ``quantized`` and ``scheme``
    together and not with ``generator``/``lora``."""
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
        "decoder",
        "decoder_weights",
        "architecture",
    )
    for key in keys:
        if spec_kw.get(key) is not None and not isinstance(spec_kw[key], str):
            raise ModelUnavailableError(f"{path}: {key} must be a string, got {spec_kw[key]!r}")
    if (spec_kw.get("quantized") is None) != (spec_kw.get("scheme") is None):
        raise ModelUnavailableError(f"{path}: 'quantized' and 'scheme' go together")
    if spec_kw.get("quantized") is not None and (spec_kw.get("generator") or spec_kw.get("lora")):
        raise ModelUnavailableError(f"{path}: a 'quantized' transformer replaces 'generator' and 'lora'")


def with_rope(spec: ModelSpec, rope: str) -> ModelSpec:
    """``spec`` with temporal RoPE ``rope`` (:data:`ROPE_NAMES`): the sampler's ``rope`` and the geometry that
    goes with it (relative: no RoPE table, :func:`~longlive_cli.geometry.relative_rope`; absolute: the
    table of the Wan2.1 config, 1024 latent frames, and the trained length, 240 s). The name is kept.

    Raises:
        ValueError: an unknown kind, or ``relative`` with a sampler that does not declare
            ``relative_rope`` (:class:`~longlive_cli.registry.SamplerInfo`; Rolling Forcing places its sink at
            absolute frames).
    """
    if rope not in ROPE_NAMES:
        raise ValueError(f"rope {rope!r} is not one of {', '.join(ROPE_NAMES)}")
    if rope == "relative" and not _sampler(spec).relative_rope:
        able = ", ".join(s.name for s in known_samplers() if s.relative_rope)
        raise ValueError(f"rope: relative works with the {able} sampler(s), not {spec.sampler.name}")
    g, table = spec.geometry, architecture_info(spec.architecture).geometry
    if rope == "relative":
        geometry = relative_rope(g)
    else:
        geometry = replace(
            g, rope_max_latent_frames=table.rope_max_latent_frames, max_trained_s=table.max_trained_s
        )
    if rope == spec.sampler.rope and geometry == g:
        return spec
    return replace(spec, sampler=replace(spec.sampler, rope=rope), geometry=geometry)


def _spec_loras(path: Path, loras: Any, *, quantized: bool) -> tuple[LoraSpec, ...]:
    """A spec file's ``loras`` list, checked."""
    if not isinstance(loras, list):
        raise ModelUnavailableError(
            f"{path}: loras must be a list of SOURCE[:SCALE] strings or {{source, scale}} mappings"
        )
    try:
        parsed = tuple(_as_lora(item) for item in loras)
    except ValueError as err:
        raise ModelUnavailableError(f"{path}: loras: {err}") from None
    if parsed and quantized:
        raise ModelUnavailableError(
            f"{path}: LoRAs cannot be merged into a 'quantized' transformer; merge them into its float "
            "source and quantize that"
        )
    return parsed


def resolve_model(name: str | ModelSpec, loras: Iterable[str | LoraSpec] = ()) -> ModelSpec:
    """The spec for a preset name, a spec file, or a folder holding ``longlive-model.yaml`` (a
    :class:`ModelSpec` is taken as it is), with ``loras`` merged on top (:func:`with_loras`).

    Raises:
        ModelUnavailableError: unknown name (the message lists the presets) or a bad spec file.
        InputError: a LoRA written wrongly, or LoRAs on a quantized model (:func:`with_loras`).
    """
    if isinstance(name, ModelSpec):
        spec = name
    elif name in NVFP4_RELEASES:
        raise ModelUnavailableError(
            f"{name} ({NVFP4_RELEASES[name]}: model_te.pt / model_4o6.pt) is an NVFP4 release: it runs only "
            "with the official LongLive 2.0 code's NVFP4 kernels (TransformerEngine or FourOverSix, "
            "built for Blackwell GPUs: B200/GB200/GB300), which this project does not ship. Use "
            "longlive-2.0-5b (the bf16 release), optionally with --int8."
        )
    elif name in PRESETS:
        spec = PRESETS[name]
    else:
        path = Path(name).expanduser()
        if path.is_dir() and (path / SPEC_FILE_IN_DIR).is_file():
            spec = load_spec(path / SPEC_FILE_IN_DIR)
        elif path.is_file():
            spec = load_spec(path)
        else:
            raise ModelUnavailableError(
                f"unknown model {name!r}: not a preset ({', '.join(PRESETS)}), nor a model spec file, nor a "
                f"folder with {SPEC_FILE_IN_DIR}."
            )
    return with_loras(spec, loras)


def with_loras(spec: ModelSpec, loras: Iterable[str | LoraSpec]) -> ModelSpec:
    """``spec`` with user LoRAs added after its own ``loras`` (each a :class:`LoraSpec` or a
    ``SOURCE[:SCALE]`` string, as ``--lora`` takes it). A local source is made absolute here, so it
    does not resolve against the spec file's folder later (a local path is relative to the working
    directory).

    Raises:
        InputError: a string that is not ``SOURCE[:SCALE]`` (exit 2), or LoRAs for a quantized
            transformer (LoRAs merge into float weights; exit 2).
    """
    from ..errors import InputError

    added: list[LoraSpec] = []
    for item in loras:
        try:
            lora = item if isinstance(item, LoraSpec) else parse_lora(item)
        except ValueError as err:
            raise InputError(f"--lora: {err}") from None
        source = parse_source(lora.source)
        if source.repo is None:  # relative to the working directory, not to a spec file's folder
            lora = replace(lora, source=str(Path(source.path).absolute()))
        added.append(lora)
    if not added:
        return spec
    if spec.quantized is not None:
        raise InputError(
            f"--lora: model {spec.name} is quantized ({spec.scheme}); LoRAs merge into float weights, so "
            "merge them into its source model (a spec with loras:) and quantize that"
        )
    return replace(spec, loras=(*spec.loras, *added))


def with_decoder(spec: ModelSpec, decoder: str) -> ModelSpec:
    """``spec`` decoding with ``decoder`` (a declared decoder, :func:`longlive_cli.registry.decoder_info`;
    ``--decoder``), from its default file.

    Raises:
        InputError: an unknown decoder (the message lists the known ones), or one for another latent space
            (:func:`check_decoder`).
        ComponentLoadError: the decoder's plugin fails to load (exit 3).
    """
    from ..errors import InputError

    try:
        decoder_info(decoder)
    except UnknownComponentError as err:
        raise InputError(f"--decoder: {err}") from None
    if decoder == spec.decoder:
        return spec
    spec = replace(spec, decoder=decoder, decoder_weights=None)
    check_decoder(spec)
    return spec


def resolve_spec(
    model: str | ModelSpec,
    rope: str | None = None,
    loras: Iterable[str | LoraSpec] = (),
    decoder: str | None = None,
) -> ModelSpec:
    """The spec of ``model`` with ``loras`` merged on top (:func:`resolve_model`), with temporal RoPE ``rope``
    when given (:func:`with_rope`; ``--rope``).

    Raises:
        ModelUnavailableError: unknown model or bad spec file (exit 3).
        InputError: a rope the model cannot use, a LoRA written wrongly (exit 2).
    """
    from ..errors import InputError

    spec = resolve_model(model, loras)
    if decoder is not None:
        spec = with_decoder(spec, decoder)
    if rope is None:
        return spec
    try:
        return with_rope(spec, rope)
    except ValueError as err:
        raise InputError(f"--rope {rope}: {err}") from None


def _sampler(spec: ModelSpec) -> SamplerInfo:
    """The declaration of ``spec``'s sampler.

    Raises:
        ModelUnavailableError: no such sampler (a spec built in code with an unregistered name).
        ComponentLoadError: its plugin fails to load.
    """
    try:
        return sampler_info(spec.sampler.name)
    except UnknownComponentError as err:
        raise ModelUnavailableError(f"model {spec.name}: {err}") from None


def check_length(spec: ModelSpec, num_blocks: int) -> None:
    """Refuse a video shorter than the spec's sampler declares it can make
    (:meth:`~longlive_cli.registry.SamplerInfo.minimum_blocks`: Rolling Forcing's window of S blocks, S
    denoising steps, must fill once, so it needs S blocks; LongLive's sampler needs one).

    Raises:
        InputError: too few blocks; the message gives the shortest duration that works.
    """
    from ..errors import InputError

    g = spec.geometry
    needed = _sampler(spec).minimum_blocks(spec.sampler.denoising_steps)
    if num_blocks < needed:
        shortest = (needed - 0.5) * g.block_video_frames / g.fps  # rounds half up to `needed` blocks
        raise InputError(
            f"{spec.name} ({spec.sampler.name}, {len(spec.sampler.denoising_steps)} steps) needs at least "
            f"{needed} blocks ({needed * g.frames_per_block} latent frames, {needed * g.block_s:g} s of "
            f"video); this video has {num_blocks}. Make the duration at least {shortest:g} s."
        )


def check_transitions(spec: ModelSpec, has_transitions: bool) -> None:
    """Refuse prompt transitions (``transition:``) for a sampler that does not declare ``transitions`` (it
    cannot blend per block: Rolling Forcing's window runs several blocks under one prompt).

    Raises:
        InputError: transitions with another sampler; the message names the way out.
    """
    from ..errors import InputError

    if has_transitions and not _sampler(spec).transitions:
        able = ", ".join(s.name for s in known_samplers() if s.transitions)
        raise InputError(
            f"{spec.name} ({spec.sampler.name}) cannot blend prompts block by block: prompt transitions "
            f"need a sampler that can ({able}). Remove the transition: keys (switches are then hard)."
        )


def check_prompt_switches(spec: ModelSpec, num_segments: int) -> None:
    """Refuse several prompts for a sampler that does not declare ``prompt_switches``.

    Raises:
        InputError: more than one prompt; the message names the way out.
    """
    from ..errors import InputError

    if num_segments > 1 and not _sampler(spec).prompt_switches:
        raise InputError(
            f"{spec.name} ({spec.sampler.name}) generates a whole video under one prompt; this storyboard "
            f"has {num_segments}. Keep one prompt, or use a model whose sampler switches prompts."
        )


def check_decoder(spec: ModelSpec) -> None:
    """Refuse a decoder that reads another latent space than the model's architecture generates in
    (:class:`~longlive_cli.architectures.LatentSpace`); the model's own VAE reads its model's latents.

    Raises:
        InputError: the latent spaces differ (exit 2).
        ModelUnavailableError: an unknown decoder or architecture in a spec built in code (exit 3).
    """
    from ..errors import InputError

    try:
        decoder, arch = decoder_info(spec.decoder), architecture_info(spec.architecture)
    except UnknownComponentError as err:
        raise ModelUnavailableError(f"model {spec.name}: {err}") from None
    if decoder.latent_space is not None and decoder.latent_space != arch.latent_space.name:
        space = arch.latent_space
        able = ", ".join(d.name for d in known_decoders() if d.latent_space in (None, space.name))
        raise InputError(
            f"decoder {decoder.name} reads {decoder.latent_space} latents; {spec.name} ({arch.name}) makes "
            f"{space.name} latents ({space.channels} channels, {space.spatial_stride}x spatial). Choose a "
            f"decoder that reads them: {able}."
        )


class PlanShape(Protocol):
    """What the capability checks read of a storyboard's plan (:class:`longlive_cli.storyboard.Plan`)."""

    @property
    def num_blocks(self) -> int: ...

    @property
    def has_transitions(self) -> bool: ...

    @property
    def segments(self) -> Sequence[object]: ...

    @property
    def has_cuts(self) -> bool: ...

    @property
    def image(self) -> object | None: ...


def check_capabilities(spec: ModelSpec, plan: PlanShape) -> None:
    """Refuse a plan that asks ``spec``'s components for what they do not declare: too few blocks for the
    sampler, prompt switches, transitions, shots or an image it cannot take, a decoder for another latent
    space.

    Raises:
        InputError: the first thing that does not fit (exit 2).
    """
    check_decoder(spec)
    check_length(spec, plan.num_blocks)
    check_prompt_switches(spec, len(plan.segments))
    check_transitions(spec, plan.has_transitions)
    check_shots(spec, plan.has_cuts)
    check_image(spec, plan.image is not None)


def models_declaring(ability: str) -> str:
    """The presets whose sampler declares ``ability`` (a :class:`~longlive_cli.registry.SamplerInfo` flag),
    for messages that say which models accept a feature."""
    return ", ".join(n for n, s in PRESETS.items() if getattr(sampler_info(s.sampler.name), ability))


def check_shots(spec: ModelSpec, has_cuts: bool) -> None:
    """Refuse shots (``cut: true``) for a model whose sampler does not declare ``shots`` (LongLive 1.0 and
    its relatives).

    Raises:
        InputError: cuts with such a model; the message names the models that take them.
    """
    from ..errors import InputError

    if has_cuts and not _sampler(spec).shots:
        accept = models_declaring("shots")
        raise InputError(
            f"{spec.name} ({spec.architecture}) has no shots: cut: true needs a LongLive 2.0 model "
            f"({accept}, or a spec file with architecture: longlive-2.0). Remove the cut: keys, or pick "
            "such a --model."
        )


def check_image(spec: ModelSpec, has_image: bool) -> None:
    """Refuse image-to-video (``image:``, ``--image``) for a model whose sampler does not declare
    ``image_input``.

    Raises:
        InputError: an image with such a model; the message names the models that take one.
    """
    from ..errors import InputError

    if has_image and not _sampler(spec).image_input:
        accept = models_declaring("image_input")
        raise InputError(
            f"{spec.name} ({spec.architecture}) takes no image: image-to-video needs a LongLive 2.0 model "
            f"({accept}, or a spec file with architecture: longlive-2.0). Remove image: / --image, or pick "
            "such a --model."
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

    ``for_text``: the text encoder and tokenizer; ``for_video``: transformer, user LoRAs (roles
    ``user_lora.1``, ``user_lora.2``, ... in the spec's order) and VAE.
    """

    def src(value: str) -> Source:
        return parse_source(value, relative_to=spec.spec_dir)

    user_loras = []
    for i, lora in enumerate(spec.loras, start=1):
        source = src(lora.source)
        if source.repo is not None and not source.path:
            raise ModelUnavailableError(
                f"LoRA {lora.source!r} names a repo, not a file: write owner/repo:path/to/lora.safetensors"
            )
        user_loras.append(Component(f"user_lora.{i}", source))
    if spec.base is None:  # tiny random weights; a quantized transformer file is the only thing read
        if not for_video:
            return []
        return [Component("quantized", src(spec.quantized))] if spec.quantized else user_loras

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
        parts += user_loras
        decoder = decoder_info(spec.decoder)
        if (
            not decoder.uses_model_vae
        ):  # a decoder with its own file replaces the VAE: only its file is fetched
            parts.append(Component("decoder", src(spec.decoder_weights or decoder.weights or "")))
        elif spec.vae:
            vae = src(spec.vae)
            parts.append(Component("vae", vae, folder=not vae.path.endswith((".pth", ".pt", ".safetensors"))))
        else:
            parts.append(Component("vae", in_base("vae"), folder=True))
    return parts


def fetch_components(spec: ModelSpec, parts: list[Component], *, offline: bool) -> dict[str, Path]:
    """Local paths of ``parts`` (downloaded into the Hub cache when needed), keyed by role.

    Raises:
        longlive_cli.hub.WeightsUnavailableError: a part cannot be had (names it and the ways out).
        WeightFileError: a part is a FIFO, a device, a folder where a file is expected, empty, or a cut
            safetensors file (:func:`~longlive_cli.models.weightfiles.check_weight_path`).
    """
    if spec.name in PRESETS:  # and the LoRAs --lora added to it
        model = spec.name + "".join(f" --lora {lora}" for lora in spec.loras[len(PRESETS[spec.name].loras) :])
    else:
        model = f"--model {spec.name}"
    from .weightfiles import check_weight_path

    paths = {}
    for p in parts:
        path = fetch(p.source, offline=offline, folder=p.folder, size=p.size, model=model)
        # What a local path really is, and whether its safetensors are whole, before any loader opens it.
        paths[p.role] = check_weight_path(path, ROLE_NAMES.get(p.role.split(".")[0], p.role), folder=p.folder)
    return paths


#: A part's role (:func:`components`) in messages.
ROLE_NAMES = {
    "text_encoder": "text encoder",
    "tokenizer": "tokenizer",
    "quantized": "quantized transformer",
    "transformer_config": "transformer config",
    "generator": "generator checkpoint",
    "lora": "LoRA checkpoint",
    "transformer": "transformer",
    "user_lora": "LoRA",
    "decoder": "decoder weights",
    "vae": "VAE",
}


def cache_root() -> Path:
    """The project's cache folder: ``$LONGLIVE_CACHE``, else the platform's user cache folder for
    ``longlive`` (``platformdirs.user_cache_dir``: ``$XDG_CACHE_HOME/longlive``, by default
    ``~/.cache/longlive``, on Linux; ``~/Library/Caches/longlive`` on macOS; under ``%LOCALAPPDATA%`` on
    Windows)."""
    if os.environ.get("LONGLIVE_CACHE"):
        return Path(os.environ["LONGLIVE_CACHE"]).expanduser()
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("longlive", appauthor=False))


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
    toy = {"num_attention_heads": 2, "attention_head_dim": 12, "text_dim": 32, "freq_dim": 16, "ffn_dim": 48}
    return {**wan_1_3b_transformer_config(), **toy, "num_layers": 2}


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
