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
limited by the 1024-entry table (DESIGN.md "Relative RoPE reference semantics").

The other presets are the released checkpoints of the same family, each read from its official file
and entry, on the same Wan2.1-T2V-1.3B files (sources checked against the authors' repositories and
model cards; the README's "Models" lists them with sizes and licences):

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

Any model also takes user LoRAs (:class:`LoraSpec`: spec key ``loras``, ``--lora SOURCE[:SCALE]``), merged
into the transformer at load time (:mod:`longlive_cli.models.user_loras`).

Torch-free: ``longlive validate`` and ``--dry-run`` plan with a spec without loading PyTorch. Loading the
parts is :mod:`longlive_cli.models.loaders`.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from ..errors import ModelError
from ..geometry import WAN21, Geometry, relative_rope
from ..hub import Source, fetch, parse_source

DEFAULT_MODEL = "longlive-1.3b"
SPEC_FILE_IN_DIR = "longlive-model.yaml"
#: The samplers a spec may name (the keys of :data:`longlive_cli.samplers.SAMPLERS`; a test keeps them equal).
SAMPLER_NAMES = ("longlive", "rolling-forcing")
#: Temporal RoPE kinds (spec key ``rope``, ``generate --rope``): ``absolute`` indexes the model's table by the
#: latent frame (at most 1024 frames, about 255 s); ``relative`` by the frame's rank in the attention window.
ROPE_NAMES = ("absolute", "relative")
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
    (:data:`longlive_cli.samplers.SAMPLERS`; spec-file key ``sampler``). ``rope`` is the temporal RoPE index
    (:data:`ROPE_NAMES`): ``absolute`` (the latent frame) or ``relative`` (the frame's rank among the cached
    frames it attends to; LongLive's sampler only). ``transition_recache``: when the KV cache is re-cached
    during a transition (:data:`TRANSITION_RECACHE`): ``every`` block whose conditioning changes (N + 1
    re-caches for an N-block transition, as Scope does at every step), ``first`` (one, at the switch, as a
    hard switch), or ``none``.

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
    official checkpoint files (``generator_key``: the entry of the generator file to read);
    ``loras`` are user LoRAs merged on top (:class:`LoraSpec`); ``text_encoder``/``vae`` may be original
    Wan ``.pth`` files;
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
#: The decoders (:mod:`longlive_cli.decoders`) and where the fast ones' official files are:
#: lightx2v/Autoencoders (its model card lists ``lightvaew2_1.pth``, ``taew2_1.pth`` and
#: ``lighttaew2_1.pth``; ``taew2_1`` is also madebyollin/taehv's). ``wan`` is the model's own VAE (``vae:``).
DECODER_NAMES = ("wan", "lightvae", "taehv", "lighttae")
DECODER_SOURCES = {
    "lightvae": "lightx2v/Autoencoders:lightvaew2_1.pth",
    "taehv": "lightx2v/Autoencoders:taew2_1.pth",
    "lighttae": "lightx2v/Autoencoders:lighttaew2_1.pth",
}

#: The preset to name when a storyboard is too long for absolute RoPE.
INFINITE_MODEL = "longlive-1.3b-infinite"
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
        if sampler_kw["name"] not in SAMPLER_NAMES:
            raise ModelUnavailableError(
                f"{path}: sampler: {sampler_kw['name']!r} is not one of {', '.join(SAMPLER_NAMES)}"
            )
    geometry_kw: dict[str, Any] = {k: v for k, v in data.items() if k in _GEOMETRY_KEYS}
    _check_sources(path, spec_kw)
    if spec_kw.get("decoder", "wan") not in DECODER_NAMES:
        raise ModelUnavailableError(
            f"{path}: decoder: {spec_kw['decoder']!r} is not one of {', '.join(DECODER_NAMES)}"
        )
    if "loras" in spec_kw:
        spec_kw["loras"] = _spec_loras(path, spec_kw["loras"], quantized=spec_kw.get("quantized") is not None)
    if "native_resolution" in geometry_kw:
        geometry_kw["native_resolution"] = tuple(geometry_kw["native_resolution"])
    if "denoising_steps" in sampler_kw:
        sampler_kw["denoising_steps"] = tuple(sampler_kw["denoising_steps"])
    try:
        sampler = SamplerConfig(**sampler_kw)
        geometry = replace(WAN21, **geometry_kw)
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
        ValueError: an unknown kind, or ``relative`` with a sampler other than LongLive's (Rolling Forcing
            places its sink at absolute frames).
    """
    if rope not in ROPE_NAMES:
        raise ValueError(f"rope {rope!r} is not one of {', '.join(ROPE_NAMES)}")
    if rope == "relative" and spec.sampler.name != "longlive":
        raise ValueError(f"rope: relative works with the longlive sampler, not {spec.sampler.name}")
    g = spec.geometry
    if rope == "relative":
        geometry = relative_rope(g)
    else:
        geometry = replace(
            g, rope_max_latent_frames=WAN21.rope_max_latent_frames, max_trained_s=WAN21.max_trained_s
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
    """``spec`` decoding with ``decoder`` (:data:`DECODER_NAMES`; ``--decoder``), from its default file.

    Raises:
        InputError: an unknown decoder.
    """
    from ..errors import InputError

    if decoder not in DECODER_NAMES:
        raise InputError(f"--decoder {decoder!r} is not one of {', '.join(DECODER_NAMES)}")
    if decoder == spec.decoder:
        return spec
    return replace(spec, decoder=decoder, decoder_weights=None)


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


def check_length(spec: ModelSpec, num_blocks: int) -> None:
    """Refuse a video too short for the spec's sampler: Rolling Forcing's window of S blocks (S denoising
    steps) must fill once, so it needs at least S blocks; LongLive's sampler needs one.

    Raises:
        InputError: too few blocks; the message gives the shortest duration that works.
    """
    from ..errors import InputError

    g = spec.geometry
    needed = len(spec.sampler.denoising_steps) if spec.sampler.name == "rolling-forcing" else 1
    if num_blocks < needed:
        shortest = (needed - 0.5) * g.block_video_frames / g.fps  # rounds half up to `needed` blocks
        raise InputError(
            f"{spec.name} ({spec.sampler.name}, {len(spec.sampler.denoising_steps)} steps) needs at least "
            f"{needed} blocks ({needed * g.frames_per_block} latent frames, {needed * g.block_s:g} s of "
            f"video); this video has {num_blocks}. Make the duration at least {shortest:g} s."
        )


def check_transitions(spec: ModelSpec, has_transitions: bool) -> None:
    """Refuse prompt transitions (``transition:``) for a sampler that cannot blend per block: they are
    LongLive's sampler's (Rolling Forcing's window runs several blocks under one prompt).

    Raises:
        InputError: transitions with another sampler; the message names the way out.
    """
    from ..errors import InputError

    if has_transitions and spec.sampler.name != "longlive":
        raise InputError(
            f"{spec.name} ({spec.sampler.name}) cannot blend prompts block by block: prompt transitions "
            "need the longlive sampler. Remove the transition: keys (switches are then hard)."
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
        if spec.decoder != "wan":  # a fast decoder replaces the Wan VAE: only its file is fetched
            parts.append(Component("decoder", src(spec.decoder_weights or DECODER_SOURCES[spec.decoder])))
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
