"""User LoRAs: community adapters for Wan2.1-T2V-1.3B merged into the transformer at load time.

A LoRA file holds, per targeted ``nn.Linear`` of the Wan transformer, a down matrix ``A [rank, in]`` and an
up matrix ``B [out, rank]`` (and sometimes an ``alpha``); merging is exact:
``W += scale * (alpha / rank) * B @ A`` (and ``bias += scale * (alpha / rank) * b`` where the file has a
LoRA bias). ``scale`` is the user's (``--lora SOURCE:SCALE``, spec key ``loras``); ``alpha / rank`` is the
file's, 1 when the file gives no alpha (peft's and diffusers' convention when loading such a file).

The formats they ship in, and how their names are read (diffusers does all the renaming; there is no key
table here):

* diffusers / peft: ``transformer.blocks.0.attn1.to_q.lora_A.weight`` (``save_lora_weights``), also without
  the ``transformer.`` prefix, with peft's ``base_model.model.`` prefix or an adapter name
  (``lora_A.default.weight``); ``alpha`` from a per-module ``<module>.alpha`` entry or from the safetensors
  metadata diffusers writes (``lora_adapter_metadata``: ``lora_alpha``, ``alpha_pattern``, ``use_rslora``,
  with or without the ``transformer.`` prefix);
* the original Wan names (ComfyUI and others): ``diffusion_model.blocks.0.self_attn.q.lora_down.weight`` /
  ``lora_up`` (or ``lora_A`` / ``lora_B``), ``.alpha``, ``.diff_b`` (a LoRA bias);
* kohya / musubi-tuner: ``lora_unet_blocks_0_self_attn_q.lora_down.weight``, ``.lora_up.weight``, ``.alpha``.

The last two are converted to diffusers names by diffusers' own converters, dispatched as
``diffusers.loaders.WanLoraLoaderMixin.lora_state_dict`` dispatches them
(``diffusers.loaders.lora_conversion_utils._convert_non_diffusers_wan_lora_to_diffusers`` and
``_convert_musubi_wan_lora_to_diffusers``), which fold each ``alpha / rank`` into ``A`` and ``B``.

Files are ``.safetensors`` or torch files read with ``torch.load(weights_only=True)``. Everything is merged
in float32 into the diffusers-named state dict of a ``WanTransformer3DModel``; an entry that targets no
module of it is an error naming the entry (:class:`~longlive_cli.models.checkpoints.CheckpointError`,
exit 3).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from .keys import key_list, natural_key
from .weights import CheckpointError, add_lora, load_flat_state_dict

if TYPE_CHECKING:
    from diffusers import WanTransformer3DModel

__all__ = ["LoraTarget", "apply_user_loras", "merge_user_loras", "read_user_lora"]

_PREFIXES = ("transformer.", "base_model.model.")  # diffusers' pipeline prefix; peft's model prefix
_ENTRY = re.compile(r"^(?P<module>.+)\.lora_(?P<which>[AB])(?:\.(?P<adapter>[^.]+))?\.(?P<kind>weight|bias)$")
_ALPHA = re.compile(r"^(?P<module>.+)\.alpha$")
_METADATA_KEY = "lora_adapter_metadata"  # diffusers.loaders.lora_base.LORA_ADAPTER_METADATA_KEY


@dataclass(frozen=True)
class LoraTarget:
    """One targeted linear layer of a LoRA file, in diffusers names.

    ``a``: ``[rank, in_features]``; ``b``: ``[out_features, rank]``; ``bias``: ``[out_features]`` or None;
    ``scale``: the file's ``alpha / rank`` (``alpha / sqrt(rank)`` for rsLoRA; 1 without an alpha);
    ``key``: the entry naming it (for messages).
    """

    a: torch.Tensor
    b: torch.Tensor
    bias: torch.Tensor | None
    scale: float
    key: str


def _read(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """The file's tensors and (safetensors only) its string metadata."""
    what, hint = "LoRA", "a LoRA file maps names to tensors"
    sd = load_flat_state_dict(path, what, hint=hint)
    metadata: dict[str, str] = {}
    if path.suffix == ".safetensors":
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:
            metadata = dict(f.metadata() or {})
    return sd, metadata


def _adapter_config(metadata: Mapping[str, str], path: Path) -> dict[str, Any]:
    """diffusers' LoRA metadata (a peft ``LoraConfig`` as JSON), keys without the ``transformer.`` prefix."""
    raw = metadata.get(_METADATA_KEY)
    if not raw:
        return {}
    try:
        config = json.loads(raw)
    except json.JSONDecodeError as e:
        raise CheckpointError(f"LoRA {path}: its {_METADATA_KEY} metadata is not JSON ({e}).") from None
    if not isinstance(config, dict):
        return {}
    prefixed = {k.removeprefix("transformer."): v for k, v in config.items() if k.startswith("transformer.")}
    return prefixed or config


def _to_diffusers_names(sd: dict[str, torch.Tensor], path: Path) -> dict[str, torch.Tensor]:
    """Original-Wan and kohya/musubi entries renamed by diffusers' converters (alpha folded in)."""
    from diffusers.loaders.lora_pipeline import WanLoraLoaderMixin

    changing = [k for k in sd if k.endswith(".diff") and sd[k].count_nonzero() > 0]
    if changing:
        raise CheckpointError(
            f"LoRA {path}: entries that replace whole weights rather than adapt them: {key_list(changing)}. "
            "Full-weight differences are not LoRA weights and cannot be merged; use a plain LoRA file."
        )
    # Differences that are all zero change nothing (diffusers drops the norm layers' ones too).
    sd = {k: v for k, v in sd.items() if not (k.endswith((".diff", ".diff_b")) and v.count_nonzero() == 0)}
    original = {k for k in sd if not k.endswith(".alpha")}
    try:
        converted = WanLoraLoaderMixin.lora_state_dict(sd)
    except (KeyError, IndexError, ValueError) as e:
        detail = f"missing entry {e}" if isinstance(e, KeyError) else str(e) or type(e).__name__
        raise CheckpointError(
            f"LoRA {path} is in the original Wan or kohya/musubi layout, but diffusers' Wan LoRA converter "
            f"cannot read it ({detail}). Only LoRAs for the Wan2.1 text-to-video transformer's blocks "
            "(attention, FFN) and embedders can be read."
        ) from None
    if len(converted) != len(original):
        raise CheckpointError(
            f"LoRA {path}: diffusers' Wan LoRA converter kept {len(converted)} of its {len(original)} "
            "weights (the others, e.g. bias differences of layers without LoRA weights, would be ignored); "
            "refusing to merge it partly."
        )
    return dict(converted)


def read_user_lora(path: str | Path) -> dict[str, LoraTarget]:
    """Read a Wan LoRA file in any of the formats above, as ``{diffusers module name: LoraTarget}``.

    Args:
        path: ``.safetensors`` (read with its metadata) or a torch file (``weights_only=True``).

    Returns:
        Targets keyed by the diffusers module name (``blocks.0.attn1.to_q``, ``blocks.0.ffn.net.0.proj``,
        ``condition_embedder.time_proj``, ...), tensors as stored.

    Raises:
        CheckpointError: unreadable or unsafe file; DoRA entries; full-weight differences; a layout
            diffusers' converters cannot read; entries that are not LoRA weights (named); several
            adapters; an A without its B (or the reverse); ranks that do not match; an alpha that is
            not a number.
    """
    path = Path(path)
    sd, metadata = _read(path)
    if not sd:
        raise CheckpointError(f"LoRA {path} holds no tensors.")
    dora = [k for k in sd if "dora_scale" in k or "lora_magnitude_vector" in k]
    if dora:
        raise CheckpointError(
            f"LoRA {path} is a DoRA ({key_list(dora)}): its magnitude vectors cannot be merged as "
            "W + B @ A; only plain LoRA files are supported."
        )
    if any(k.startswith(("diffusion_model.", "lora_unet_")) for k in sd):
        sd = _to_diffusers_names(sd, path)
    parts, alphas = _group(sd, path)
    config = _adapter_config(metadata, path)
    return {module: _target(path, module, parts[module], alphas, config) for module in parts}


def _group(
    sd: Mapping[str, torch.Tensor], path: Path
) -> tuple[dict[str, dict[str, tuple[str, torch.Tensor]]], dict[str, tuple[str, torch.Tensor]]]:
    """Diffusers-named entries grouped by module: ``{module: {"A"|"B"|"bias": (key, tensor)}}`` and
    ``{module: (key, alpha tensor)}``, in natural module order."""
    parts: dict[str, dict[str, tuple[str, torch.Tensor]]] = {}
    alphas: dict[str, tuple[str, torch.Tensor]] = {}
    adapters: set[str] = set()
    foreign: list[str] = []
    for key, value in sd.items():
        name = key
        for prefix in _PREFIXES:
            name = name.removeprefix(prefix)
        if m := _ALPHA.match(name):
            alphas[m["module"]] = (key, value)
            continue
        m = _ENTRY.match(name)
        if m is None or (m["kind"] == "bias" and m["which"] == "A"):
            foreign.append(key)
            continue
        if m["adapter"]:
            adapters.add(m["adapter"])
        parts.setdefault(m["module"], {})[m["which"] if m["kind"] == "weight" else "bias"] = (key, value)
    if foreign:
        raise CheckpointError(
            f"LoRA {path}: entries that are not LoRA weights (lora_A / lora_B / alpha): "
            f"{key_list(sorted(foreign, key=natural_key))}. Use a plain LoRA file for Wan2.1-T2V."
        )
    if len(adapters) > 1:
        raise CheckpointError(f"LoRA {path} holds several adapters ({', '.join(sorted(adapters))}).")
    if not parts:
        raise CheckpointError(f"LoRA {path} holds no LoRA weights.")
    stray = sorted(set(alphas) - set(parts))
    if stray:
        raise CheckpointError(f"LoRA {path}: alpha entries without LoRA weights: {key_list(stray)}.")
    return {m: parts[m] for m in sorted(parts, key=natural_key)}, alphas


def _target(
    path: Path,
    module: str,
    slot: Mapping[str, tuple[str, torch.Tensor]],
    alphas: Mapping[str, tuple[str, torch.Tensor]],
    config: Mapping[str, Any],
) -> LoraTarget:
    """One module's :class:`LoraTarget`; its alpha from the module's ``alpha`` entry, else the metadata's
    ``alpha_pattern`` / ``lora_alpha``, else ``rank`` (scale 1)."""
    if "A" not in slot or "B" not in slot:
        have = next(iter(slot.values()))[0]
        raise CheckpointError(f"LoRA {path}: {have!r} has no matching lora_A/lora_B; the file is incomplete.")
    (key, a), (_, b) = slot["A"], slot["B"]
    if a.ndim != 2 or b.ndim != 2 or a.shape[0] != b.shape[1]:
        raise CheckpointError(
            f"LoRA {path}: {key!r} is {tuple(a.shape)} with lora_B {tuple(b.shape)}; expected "
            "A [rank, in] and B [out, rank]."
        )
    alpha: Any
    if module in alphas:
        alpha_key, value = alphas[module]
        if value.numel() != 1:
            raise CheckpointError(f"LoRA {path}: {alpha_key!r} is not one number.")
        alpha = value.item()
    else:
        pattern = config.get("alpha_pattern") or {}
        alpha = next((v for k, v in pattern.items() if module == k or module.endswith("." + k)), None)
        alpha = config.get("lora_alpha") if alpha is None else alpha
    rank = a.shape[0]
    if alpha is None:
        scale = 1.0
    elif isinstance(alpha, int | float) and not isinstance(alpha, bool) and math.isfinite(alpha):
        scale = alpha / (math.sqrt(rank) if config.get("use_rslora") else rank)
    else:
        raise CheckpointError(f"LoRA {path}: the alpha of {module!r} is {alpha!r}, not a number.")
    bias = slot["bias"][1] if "bias" in slot else None
    return LoraTarget(a=a, b=b, bias=bias, scale=float(scale), key=key)


def merge_user_loras(
    state_dict: Mapping[str, torch.Tensor],
    loras: Sequence[tuple[Mapping[str, LoraTarget], float, str]],
) -> dict[str, torch.Tensor]:
    """Fold LoRAs into diffusers-named weights: ``W += scale * file_scale * B @ A`` for each target.

    Args:
        state_dict: a ``WanTransformer3DModel`` state dict (diffusers names).
        loras: ``(targets from read_user_lora, user scale, name for messages)``, merged in this order.

    Returns:
        A new dict: every targeted weight (and bias) is float32, summed over all LoRAs before any rounding;
        every other entry is the same tensor object as in ``state_dict``.

    Raises:
        CheckpointError: an entry targets a module the transformer does not have (the entry and the file are
            named), or whose weight shape is not ``[B.shape[0], A.shape[1]]``.
    """
    merged = dict(state_dict)
    touched: set[str] = set()

    def float32(key: str) -> torch.Tensor:
        if key not in touched:
            merged[key] = merged[key].to(torch.float32, copy=True)
            touched.add(key)
        return merged[key]

    for targets, user_scale, name in loras:
        for module, t in targets.items():
            weight = f"{module}.weight"
            if weight not in state_dict:
                raise CheckpointError(
                    f"LoRA {name}: {t.key!r} targets {module!r}, which the Wan transformer does not have. "
                    "The LoRA was made for another model (a Wan2.1-T2V-1.3B LoRA is needed)."
                )
            w = state_dict[weight]
            if tuple(w.shape) != (t.b.shape[0], t.a.shape[1]):
                raise CheckpointError(
                    f"LoRA {name}: {t.key!r} gives B {tuple(t.b.shape)} @ A {tuple(t.a.shape)} for "
                    f"{weight!r}, which is {tuple(w.shape)}. The LoRA was made for another model size."
                )
            factor = float(user_scale) * t.scale
            merged[weight] = add_lora(float32(weight), t.a, t.b, factor)
            if t.bias is not None:
                bias = f"{module}.bias"
                if bias not in state_dict or tuple(state_dict[bias].shape) != tuple(t.bias.shape):
                    raise CheckpointError(
                        f"LoRA {name}: {t.key!r} has a bias for {module!r}, which does not fit its layer."
                    )
                merged[bias] = float32(bias) + factor * t.bias.to(torch.float32)
    return merged


def apply_user_loras(model: WanTransformer3DModel, loras: Sequence[tuple[str | Path, float]]) -> None:
    """Merge LoRA files (``(path, user scale)``) into ``model``'s weights in place (models not built from a
    converted checkpoint: the base's diffusers weights, ``tiny-random``). Each weight is computed in float32
    and rounded once to its own dtype.

    Raises:
        CheckpointError: as :func:`read_user_lora` and :func:`merge_user_loras`.
    """
    if not loras:
        return
    sd = model.state_dict()
    merged = merge_user_loras(sd, [(read_user_lora(p), s, str(p)) for p, s in loras])
    with torch.no_grad():
        for key, value in merged.items():
            if value is not sd[key]:
                sd[key].copy_(value.to(sd[key].dtype))
