"""Reading the official LongLive checkpoints safely, merging the LoRA, and converting keys for diffusers.

The official files (Hub repo ``Efficient-Large-Model/LongLive-1.3B``):

* ``models/longlive_base.pt``: a ``torch.save`` dict whose ``generator`` (and, from EMA training,
  ``generator_ema``) entry is the state dict of the ``WanDiffusionWrapper`` (NVlabs/LongLive v1.0
  ``utils/wan_wrapper.py``): the Wan backbone sits at ``wrapper.model``, so every key is ``model.``
  followed by an original Wan key (``blocks.0.self_attn.q.weight``, ``head.modulation``, ...; layout in
  ``wan/modules/model.py`` / ``wan/modules/causal_model.py``). ``interactive_inference.py`` picks the
  entry by ``use_ema`` and strips ``_fsdp_wrapped_module.`` from EMA names; ``trainer/distillation.py``
  also strips ``_checkpoint_wrapped_module.`` and ``_orig_mod.`` from parameter names.
* ``models/lora.pt``: ``{"generator_lora": sd, ...}`` or a bare ``sd`` (both accepted by
  ``interactive_inference.py``), where ``sd`` is peft's ``get_peft_model_state_dict`` of the
  peft-wrapped ``CausalWanModel`` (``utils/lora_utils.py``): keys like
  ``base_model.model.blocks.0.self_attn.q.lora_A.weight`` (peft drops the adapter name ``default``).
  Targets are every ``nn.Linear`` inside each attention block; rank 256, alpha 256
  (``configs/longlive_interactive_inference.yaml``).

The other releases of the family store their generators the same way (``model.<Wan key>`` entries of
a ``WanDiffusionWrapper``, FSDP prefixes in some): TencentARC/RollingForcing
``checkpoints/rolling_forcing_dmd.pt`` and gdhe17/Self-Forcing ``checkpoints/self_forcing_dmd.pt``
(``generator_ema``), zhuhz22/Causal-Forcing ``chunkwise/longvideo.pt`` (``generator_ema``) and
``chunkwise/causal_forcing.pt`` (``generator``). Only the entry asked for is used; the file is
memory-mapped, so the others are not read into memory. User LoRAs in the community formats are
:mod:`longlive_cli.models.user_loras`.

Everything here is read with ``torch.load(weights_only=True)``: a file that needs arbitrary unpickling is
refused. Original Wan keys are converted with diffusers' own ``convert_wan_transformer_to_diffusers``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from ..fileio import atomic_output
from .weights import MAX_LISTED, CheckpointError, StrPath, add_lora, name_listing, safe_torch_load

if TYPE_CHECKING:
    from diffusers import WanTransformer3DModel

log = logging.getLogger(__name__)

# Prefixes that FSDP, activation checkpointing and torch.compile put in front of module names
# (official trainer/distillation.py strips exactly these three).
_WRAPPER_PARTS = ("_fsdp_wrapped_module.", "_checkpoint_wrapped_module.", "_orig_mod.")
# peft's model-level prefix: PeftModel.base_model (LoraModel) .model (the wrapped module).
_PEFT_PREFIX = "base_model.model."
_LORA_KEY = re.compile(r"^(?P<module>.+)\.lora_(?P<which>[AB])(?:\.(?P<adapter>[^.]+))?\.weight$")
# Bump when the cache file's content or layout changes, so old caches are not reused.
# 2: the modules diffusers keeps in float32 are stored in float32 whatever the dtype.
_CACHE_FORMAT = 2


def _strip_wrappers(name: str) -> str:
    for part in _WRAPPER_PARTS:
        name = name.replace(part, "")
    return name


def _as_tensor_dict(obj: Any, path: Path, what: str) -> dict[str, torch.Tensor]:
    if not isinstance(obj, Mapping):
        raise CheckpointError(
            f"{what} {path} holds a {type(obj).__name__}, not a state dict (name -> tensor)."
        )
    bad = [str(k) for k, v in obj.items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)]
    if bad:
        raise CheckpointError(
            f"{what} {path}: entries that are not tensors: {name_listing(bad)}. "
            "Expected a state dict (name -> tensor)."
        )
    return dict(obj)


def _rename_unique(sd: Mapping[str, torch.Tensor], rename, path: Path, what: str) -> dict[str, torch.Tensor]:
    out: dict[str, torch.Tensor] = {}
    for key, value in sd.items():
        new = rename(key)
        if new in out:
            raise CheckpointError(
                f"{what} {path}: two entries become {new!r} once wrapper prefixes are removed; "
                "the file mixes two copies of the model. Re-export it with one copy."
            )
        out[new] = value
    return out


def load_official_state_dict(path: StrPath, *, key: str = "generator") -> dict[str, torch.Tensor]:
    """Read the generator weights of an official LongLive checkpoint, with ORIGINAL Wan key names.

    Args:
        path: ``longlive_base.pt`` (a ``torch.save`` dict whose ``key`` entry is the
            ``WanDiffusionWrapper`` state dict) or a ``.safetensors`` file holding such a state dict
            flat (``model.``-prefixed or bare Wan keys; ``key`` is not used then).
        key: ``"generator"`` or ``"generator_ema"`` (official ``interactive_inference.py``: ``use_ema``).

    Returns:
        Original Wan names (``blocks.0.self_attn.q.weight``, ...) -> tensors as stored (dtype
        unchanged, memory-mapped where the format allows). Source rules: the leading ``model.``
        comes from ``WanDiffusionWrapper.model`` (``utils/wan_wrapper.py``); ``_fsdp_wrapped_module.``,
        ``_checkpoint_wrapped_module.`` and ``_orig_mod.`` are removed anywhere in a name
        (``interactive_inference.py`` ``_clean_key``, ``trainer/distillation.py``).

    Raises:
        CheckpointError: the file is missing or unreadable; it needs arbitrary unpickling (refused);
            ``key`` is absent (the message lists the entries present); an entry is not a tensor; two
            names collide after prefix removal.
    """
    path = Path(path)
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        if not path.is_file():
            raise CheckpointError(f"generator checkpoint {path}: no such file. Check the path.")
        try:
            raw: Any = load_file(path)
        except Exception as e:
            raise CheckpointError(
                f"generator checkpoint {path} is not a readable safetensors file ({e}). Download it again."
            ) from e
    else:
        ckpt = safe_torch_load(path, "generator checkpoint")
        if not isinstance(ckpt, Mapping) or key not in ckpt:
            present = ", ".join(map(repr, ckpt)) if isinstance(ckpt, Mapping) else type(ckpt).__name__
            raise CheckpointError(
                f"generator checkpoint {path} has no {key!r} entry (it has: {present}). "
                "Pick one of those as the generator key (official files use 'generator', "
                "or 'generator_ema' for EMA weights)."
            )
        raw = ckpt[key]
    sd = _as_tensor_dict(raw, path, "generator checkpoint")

    def rename(name: str) -> str:
        name = _strip_wrappers(name)
        # `model.` is the wrapper's attribute; a bare Wan name never starts with it.
        return name.removeprefix("model.")

    return _rename_unique(sd, rename, path, "generator checkpoint")


def load_lora_state_dict(path: StrPath) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Read an official LongLive LoRA file into ``{Wan module name: (A, B)}``.

    Args:
        path: ``lora.pt``: ``{"generator_lora": peft_sd, ...}`` or a bare ``peft_sd``
            (official ``interactive_inference.py`` accepts both).

    Returns:
        Original Wan module names (``blocks.0.self_attn.q``, ``blocks.0.ffn.0``, ...) -> ``(A, B)`` with
        ``A: [rank, in_features]`` and ``B: [out_features, rank]``, dtype as stored. Key rules (peft's
        ``get_peft_model_state_dict`` on the peft-wrapped ``CausalWanModel``, ``utils/lora_utils.py``):
        ``base_model.model.<module>.lora_A.weight`` / ``.lora_B.weight``; also accepted without the
        ``base_model.model.`` prefix, with an adapter name (``lora_A.default.weight``, one adapter only)
        and with FSDP/checkpoint/compile wrapper prefixes.

    Raises:
        CheckpointError: unreadable or unsafe file; entries other than plain ``lora_A``/``lora_B``
            weights (e.g. DoRA magnitudes, trained biases); more than one adapter; a module with only A
            or only B; A/B not 2-D or with different ranks.
    """
    path = Path(path)
    what = "LoRA checkpoint"
    ckpt = safe_torch_load(path, what)
    if isinstance(ckpt, Mapping) and "generator_lora" in ckpt:
        ckpt = ckpt["generator_lora"]
    sd = _as_tensor_dict(ckpt, path, what)

    parts: dict[str, dict[str, torch.Tensor]] = {}
    adapters: set[str] = set()
    foreign: list[str] = []
    for key, value in sd.items():
        name = _strip_wrappers(key).removeprefix(_PEFT_PREFIX)
        m = _LORA_KEY.match(name)
        if m is None:
            foreign.append(key)
            continue
        if m["adapter"]:
            adapters.add(m["adapter"])
        slot = parts.setdefault(m["module"], {})
        if m["which"] in slot:
            raise CheckpointError(f"{what} {path}: {key!r} appears twice for module {m['module']!r}.")
        slot[m["which"]] = value
    if foreign:
        raise CheckpointError(
            f"{what} {path}: entries that are not plain LoRA lora_A/lora_B weights: {name_listing(foreign)}. "
            "Only plain LoRA (no DoRA, no trained biases) can be merged; use the official lora.pt."
        )
    if len(adapters) > 1:
        raise CheckpointError(
            f"{what} {path} holds several adapters ({', '.join(sorted(adapters))}); "
            "save one adapter per file."
        )
    if not parts:
        raise CheckpointError(f"{what} {path} holds no LoRA weights.")

    out: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
    for module, slot in parts.items():
        if set(slot) != {"A", "B"}:
            have = "".join(sorted(slot))
            raise CheckpointError(
                f"{what} {path}: module {module!r} has lora_{have} but not its pair; the file is incomplete."
            )
        a, b = slot["A"], slot["B"]
        if a.ndim != 2 or b.ndim != 2 or a.shape[0] != b.shape[1]:
            raise CheckpointError(
                f"{what} {path}: module {module!r} has lora_A {tuple(a.shape)} and lora_B {tuple(b.shape)}; "
                "expected A [rank, in] and B [out, rank]."
            )
        out[module] = (a, b)
    return out


def merge_lora(
    state_dict: Mapping[str, torch.Tensor],
    lora: Mapping[str, tuple[torch.Tensor, torch.Tensor]],
    *,
    rank: int,
    alpha: float,
    source: StrPath | None = None,
) -> dict[str, torch.Tensor]:
    """Fold a LoRA into the weights: ``W' = W + (alpha / rank) * (B @ A)`` for every target.

    Args:
        state_dict: original Wan names -> tensors (from :func:`load_official_state_dict`).
        lora: ``{module: (A [rank, in], B [out, rank])}`` (from :func:`load_lora_state_dict`); module
            ``m`` targets ``state_dict[m + ".weight"]`` of shape ``[out, in]``.
        rank, alpha: the adapter's spec (official: 256 and 256,
            ``configs/longlive_interactive_inference.yaml``).
            The scale ``alpha / rank`` is peft's ``LoraLayer.scaling`` without rsLoRA
            (``utils/lora_utils.py`` builds a plain ``peft.LoraConfig``).
        source: the LoRA file, only to name it in error messages.

    Returns:
        A new dict; targeted weights are computed in float32 and cast to their own dtype, every other
        entry is the same tensor object as in ``state_dict``.

    Raises:
        CheckpointError: ``A.shape[0] != rank`` ("LoRA rank is X, spec says Y"); a target missing from
            ``state_dict``; a target whose shape is not ``[B.shape[0], A.shape[1]]`` (both shapes named).
    """
    where = f"LoRA checkpoint {source}" if source is not None else "LoRA"
    if rank <= 0:
        raise CheckpointError(f"LoRA rank must be positive, spec says {rank}.")
    scale = float(alpha) / rank
    merged = dict(state_dict)
    for module, (a, b) in sorted(lora.items()):
        target = f"{module}.weight"
        if a.shape[0] != rank:
            raise CheckpointError(
                f"{where}: LoRA rank is {a.shape[0]}, spec says {rank} "
                f"(lora_A of {module!r} is {tuple(a.shape)}). "
                "Fix lora_rank in the model spec, or use the LoRA file made for it."
            )
        if target not in state_dict:
            raise CheckpointError(
                f"{where}: targets {target!r}, which the generator weights do not have. "
                "The LoRA was made for a different model; use the matching generator checkpoint."
            )
        w = state_dict[target]
        expected = (b.shape[0], a.shape[1])
        if tuple(w.shape) != expected:
            raise CheckpointError(
                f"{where}: {target!r} has shape {tuple(w.shape)} in the generator weights but the LoRA "
                f"(B {tuple(b.shape)} @ A {tuple(a.shape)}) gives {expected}. "
                "The LoRA was made for a different model; use the matching files."
            )
        merged[target] = add_lora(w.to(torch.float32), a, b, scale).to(w.dtype)
    return merged


def convert_to_diffusers(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename original Wan keys to diffusers ``WanTransformer3DModel`` keys.

    Uses diffusers' ``diffusers.loaders.single_file_utils.convert_wan_transformer_to_diffusers`` (the
    table ``from_single_file`` uses). Tensors are not copied. The input is left untouched (the
    converter empties the dict it is given, so it gets a shallow copy).

    Raises:
        CheckpointError: two names would land on the same diffusers name (weights would be lost).
    """
    from diffusers.loaders.single_file_utils import convert_wan_transformer_to_diffusers

    converted = convert_wan_transformer_to_diffusers(dict(state_dict))
    if len(converted) != len(state_dict):
        raise CheckpointError(
            f"converting {len(state_dict)} Wan weights to diffusers names gave {len(converted)}: "
            "some names collide. The checkpoint has entries that are not Wan transformer weights."
        )
    return converted


# --- building the model ----------------------------------------------------------------------------


@contextmanager
def _parameters_on_meta() -> Iterator[None]:
    """Create module parameters on the meta device (no memory, no init), leaving buffers real.

    Buffers stay real because some are computed at construction and never saved (diffusers'
    ``WanRotaryPosEmbed`` registers its RoPE tables with ``persistent=False``), so a state dict
    cannot fill them; building everything under ``torch.device("meta")`` would lose them.
    """
    original = torch.nn.Module.register_parameter

    def register_on_meta(module: torch.nn.Module, name: str, param: torch.nn.Parameter | None) -> None:
        original(module, name, param)
        if param is not None and param.device.type != "meta":
            module._parameters[name] = torch.nn.Parameter(param.to("meta"), requires_grad=param.requires_grad)

    torch.nn.Module.register_parameter = register_on_meta  # type: ignore[method-assign,assignment]
    try:
        yield
    finally:
        torch.nn.Module.register_parameter = original  # type: ignore[method-assign]


def _file_identity(path: Path) -> dict[str, Any]:
    st = path.stat()
    return {"path": str(path.resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def cache_digest(
    generator: StrPath,
    *,
    generator_key: str,
    lora: StrPath | None,
    lora_rank: int,
    lora_alpha: float,
    dtype: torch.dtype,
    user_loras: Sequence[tuple[StrPath, float]] = (),
) -> str:
    """Hex digest naming the converted-weights cache for these sources and settings.

    Hashes the identity (resolved path, size, ``mtime_ns``) of the generator and LoRA files, the
    generator key (the entry read: two presets reading two entries of one file get two caches), the LoRA
    rank/alpha, the user LoRAs' files and scales in merge order, the dtype and the cache format version:
    replacing or touching a source file gives a new name, so a stale cache is never read.
    """
    ident: dict[str, Any] = {
        "format": _CACHE_FORMAT,
        "generator": _file_identity(Path(generator)),
        "generator_key": generator_key,
        "lora": _file_identity(Path(lora)) if lora is not None else None,
        "lora_rank": lora_rank,
        "lora_alpha": float(lora_alpha),
        "dtype": str(dtype),
    }
    if user_loras:  # absent without any, so that caches written before user LoRAs keep their names
        ident["user_loras"] = [
            {"file": _file_identity(Path(p)), "scale": float(scale)} for p, scale in user_loras
        ]
    return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:32]


def cache_file(
    cache_dir: StrPath,
    generator: StrPath,
    *,
    generator_key: str,
    lora: StrPath | None,
    lora_rank: int,
    lora_alpha: float,
    dtype: torch.dtype,
    user_loras: Sequence[tuple[StrPath, float]] = (),
) -> Path:
    """The converted-weights cache file :func:`load_transformer` reads or writes for these sources and
    settings (user LoRAs and their scales included): ``cache_dir/<cache_digest(...)>.safetensors`` (it may not
    exist yet).

    Raises:
        CheckpointError: the generator or a LoRA file does not exist.
    """
    sources = [(generator, "generator checkpoint"), (lora, "LoRA checkpoint")]
    sources += [(p, "LoRA") for p, _ in user_loras]
    for p, what in sources:
        if p is not None and not Path(p).is_file():
            raise CheckpointError(f"{what} {p}: no such file. Check the path, or download the weights again.")
    digest = cache_digest(
        generator,
        generator_key=generator_key,
        lora=lora,
        lora_rank=lora_rank,
        lora_alpha=lora_alpha,
        dtype=dtype,
        user_loras=user_loras,
    )
    return Path(cache_dir) / f"{digest}.safetensors"


def _save_atomic(sd: Mapping[str, torch.Tensor], dest: Path) -> None:
    from safetensors.torch import save_file

    dest.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(dest) as tmp:  # readers see either no file or the whole file
        # safetensors refuses views and shared storage; every entry is written as its own block.
        save_file({k: v.contiguous() for k, v in sd.items()}, str(tmp))


def _check_against_model(
    sd: Mapping[str, torch.Tensor],
    expected: Mapping[str, torch.Size],
    origin: str,
    original_names: Mapping[str, str],
) -> None:
    missing = [k for k in expected if k not in sd]
    unexpected = [k for k in sd if k not in expected]
    problems = []
    if missing:
        problems.append(
            f"{len(missing)} weights the model needs are missing (diffusers names): {name_listing(missing)}"
        )
    if unexpected:
        shown = [original_names.get(k, k) for k in unexpected]
        problems.append(f"{len(unexpected)} entries the model does not have: {name_listing(shown)}")
    shapes = [
        f"{original_names.get(k, k)} is {tuple(sd[k].shape)}, the model expects {tuple(shape)}"
        for k, shape in expected.items()
        if k in sd and tuple(sd[k].shape) != tuple(shape)
    ]
    if shapes:
        problems.append(f"{len(shapes)} shape mismatches: {'; '.join(shapes[:MAX_LISTED])}")
    if problems:
        raise CheckpointError(
            f"{origin} does not fit the transformer config: {'. '.join(problems)}. "
            "Use the generator checkpoint made for this base model (Wan2.1-T2V-1.3B for LongLive-1.3B), "
            "with the right generator key."
        )


def load_diffusers_transformer(
    folder: StrPath, *, dtype: torch.dtype = torch.float32
) -> WanTransformer3DModel:
    """A ``WanTransformer3DModel`` from a diffusers folder (``config.json`` + ``diffusion_pytorch_model``
    ``.safetensors``, or shards listed in ``diffusion_pytorch_model.safetensors.index.json``), every weight
    in ``dtype``.

    Built here rather than by ``WanTransformer3DModel.from_pretrained``, which needs the optional
    ``accelerate`` package for this class (its ``_keep_in_fp32_modules`` force ``low_cpu_mem_usage``).
    Parameters are created without allocation or random init, then take the loaded tensors.

    Raises:
        CheckpointError: no config or weights in ``folder``, an unreadable file, or weights that do not fit
            the config (missing, unexpected or misshapen entries are named).
    """
    from diffusers import WanTransformer3DModel
    from diffusers.models.modeling_utils import no_init_weights
    from safetensors.torch import load_file

    folder = Path(folder)
    index = folder / "diffusion_pytorch_model.safetensors.index.json"
    single = folder / "diffusion_pytorch_model.safetensors"
    try:
        config = json.loads((folder / "config.json").read_text())
        if index.is_file():
            shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
            files = [folder / name for name in shards]
        else:
            files = [single]
        sd: dict[str, torch.Tensor] = {}
        for file in files:
            sd.update(load_file(file))
    except (OSError, ValueError, KeyError) as e:
        raise CheckpointError(
            f"transformer folder {folder}: cannot read config.json and the diffusers safetensors weights "
            f"({e})."
        ) from None
    with no_init_weights(), _parameters_on_meta():
        model = WanTransformer3DModel.from_config(config)
    expected = {k: v.shape for k, v in model.state_dict().items()}
    _check_against_model(sd, expected, f"transformer folder {folder}", {})
    sd = {k: v.to(dtype) if v.is_floating_point() else v for k, v in sd.items()}
    model.load_state_dict(sd, strict=True, assign=True)
    return model.eval().requires_grad_(False)


def load_transformer(
    config: Mapping[str, Any],
    *,
    generator: StrPath,
    generator_key: str = "generator",
    lora: StrPath | None = None,
    lora_rank: int = 256,
    lora_alpha: float = 256,
    cache_dir: StrPath | None = None,
    dtype: torch.dtype = torch.float32,
    user_loras: Sequence[tuple[StrPath, float]] = (),
) -> WanTransformer3DModel:
    """Build a diffusers ``WanTransformer3DModel`` holding an official generator's weights (LongLive, Rolling
    Forcing, Self-Forcing, Causal Forcing: all store ``model.<Wan key>`` entries).

    Args:
        config: the base model's ``transformer/config.json`` contents (``WanTransformer3DModel`` config).
        generator: ``longlive_base.pt`` (or a ``.safetensors`` with the same keys), see
            :func:`load_official_state_dict`.
        generator_key: ``"generator"`` or ``"generator_ema"``.
        lora: optional ``lora.pt``, merged with ``alpha / rank`` (official inference applies it on top of
            the loaded base weights: ``interactive_inference.py``).
        lora_rank, lora_alpha: the adapter's spec; the file's rank must match ``lora_rank``.
        user_loras: user LoRA files and their scales (:mod:`longlive_cli.models.user_loras`), merged after
            the conversion, in this order, on top of ``lora``.
        cache_dir: when given, the converted (and merged) diffusers state dict is written once to
            ``cache_dir/<digest>.safetensors`` (see :func:`cache_digest`) and later calls read that
            instead of the ``.pt`` files. An unreadable cache file is rebuilt.
        dtype: the weights' dtype (LoRA targets are merged in float32 and rounded once to ``dtype``); the
            modules diffusers keeps in float32 (``WanTransformer3DModel._keep_in_fp32_modules``) stay
            float32.

    Returns:
        The model on CPU in ``eval()`` mode with gradients off. Parameters are created without
        allocation or random init and then take the loaded tensors (``load_state_dict(assign=True)``).

    Raises:
        CheckpointError: any file problem listed in :func:`load_official_state_dict`,
            :func:`load_lora_state_dict`, :func:`merge_lora`,
            :func:`~longlive_cli.models.user_loras.read_user_lora` and
            :func:`~longlive_cli.models.user_loras.merge_user_loras`; or the weights do not fit ``config``:
            missing or unexpected entries (up to 10 named, with the count) or shape mismatches.
    """
    from diffusers import WanTransformer3DModel
    from diffusers.models.modeling_utils import no_init_weights

    generator = Path(generator)
    lora = Path(lora) if lora is not None else None
    with no_init_weights(), _parameters_on_meta():
        model = WanTransformer3DModel.from_config(dict(config))
    expected = {k: v.shape for k, v in model.state_dict().items()}

    cached: Path | None = None
    sd: dict[str, torch.Tensor] | None = None
    if cache_dir is not None:
        # Stat the sources first: a missing file should say so, not fail inside the digest.
        cached = cache_file(
            cache_dir,
            generator,
            generator_key=generator_key,
            lora=lora,
            lora_rank=lora_rank,
            lora_alpha=lora_alpha,
            dtype=dtype,
            user_loras=user_loras,
        )
        if cached.is_file():
            from safetensors.torch import load_file

            try:
                sd = load_file(cached)
            except Exception as e:  # a damaged cache is only a lost shortcut
                log.warning("converted-weights cache %s is unreadable (%s); rebuilding it", cached, e)
                sd = None
            else:
                origin = f"converted-weights cache {cached} (made from {generator})"
                _check_against_model(sd, expected, origin, {})

    if sd is None:
        original = load_official_state_dict(generator, key=generator_key)
        if lora is not None:
            adapter = load_lora_state_dict(lora)
            # Upcast the targets so the merged weight is rounded to `dtype` once, not twice.
            targets = {f"{m}.weight" for m in adapter}
            base = {
                k: v.float() if k in targets and v.is_floating_point() else v for k, v in original.items()
            }
            original = merge_lora(base, adapter, rank=lora_rank, alpha=lora_alpha, source=lora)
        names = {id(v): k for k, v in original.items()}
        converted = convert_to_diffusers(original)
        original_names = {k: names.get(id(v), k) for k, v in converted.items()}
        _check_against_model(converted, expected, f"generator checkpoint {generator}", original_names)
        if user_loras:
            from .user_loras import merge_user_loras, read_user_lora

            loras = [(read_user_lora(Path(p)), float(scale), str(p)) for p, scale in user_loras]
            converted = merge_user_loras(converted, loras)
        keep = WanTransformer3DModel._keep_in_fp32_modules or ()
        sd = {
            k: v.to(torch.float32 if any(m in k.split(".") for m in keep) else dtype)
            if v.is_floating_point()
            else v
            for k, v in converted.items()
        }
        if cached is not None:
            _save_atomic(sd, cached)
            log.info("wrote converted weights to %s", cached)

    model.load_state_dict(sd, strict=True, assign=True)
    left = [n for n, t in [*model.named_parameters(), *model.named_buffers()] if t.device.type == "meta"]
    if left:  # a parameter that no state dict entry fills would otherwise fail later, far from here
        raise CheckpointError(f"these model tensors were not loaded from {generator}: {name_listing(left)}")
    return model.eval().requires_grad_(False)
