"""Loading a model's parts: the causal transformer (official checkpoints, LoRA, INT8), the VAE, the UMT5
encoder.

What to load and from where is the spec's (:mod:`longlive_cli.models.spec`); the file formats are the
converters' (:mod:`~longlive_cli.models.checkpoints` for the transformer, :mod:`~longlive_cli.models.vae`,
:mod:`~longlive_cli.models.umt5`, :mod:`~longlive_cli.models.int8`). ``tiny-random`` is built here.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from ..architectures import DEFAULT_ARCHITECTURE
from ..geometry import Geometry
from .spec import (
    ModelSpec,
    ModelUnavailableError,
    components,
    converted_cache_dir,
    fetch_components,
    tiny_transformer_config,
    wan_1_3b_transformer_config,
)

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


def _keep_in_fp32(name: str, keep: Sequence[str]) -> bool:
    # diffusers' rule (load_model_dict_into_meta): a module name among the dotted parts of the tensor's name.
    return bool(keep) and any(k in name.split(".") for k in keep)


def cast_module(module: torch.nn.Module, dtype: torch.dtype, *, keep_fp32: Sequence[str] = ()) -> None:
    """Cast the floating parameters and buffers of ``module`` to ``dtype`` in place, except those under a
    module named in ``keep_fp32`` (parameters there become float32; buffers there, such as the float32
    RoPE tables, keep their dtype).

    Unlike diffusers' ``ModelMixin.to(dtype)``, which casts everything and warns about
    ``_keep_in_fp32_modules``, this keeps those modules as diffusers' own ``from_pretrained(torch_dtype=...)``
    does, without a warning.
    """
    with torch.no_grad():
        for prefix, sub in module.named_modules():
            for name, p in list(sub._parameters.items()):
                if p is None or not p.is_floating_point():
                    continue
                full = f"{prefix}.{name}" if prefix else name
                target = torch.float32 if _keep_in_fp32(full, keep_fp32) else dtype
                if p.dtype != target:
                    sub._parameters[name] = torch.nn.Parameter(p.to(target), requires_grad=p.requires_grad)
            for name, b in list(sub._buffers.items()):
                full = f"{prefix}.{name}" if prefix else name
                if b is not None and b.is_floating_point() and not _keep_in_fp32(full, keep_fp32):
                    sub._buffers[name] = b.to(dtype)


def _place(
    module: torch.nn.Module,
    device: torch.device | str,
    dtype: torch.dtype,
    *,
    keep_fp32: Sequence[str] = (),
) -> torch.nn.Module:
    # Cast only when asked: float32 stays as built. Moving goes through torch's own Module.to (device
    # only), so diffusers' ModelMixin.to does not warn about its float32 modules.
    torch.nn.Module.to(module, device=device)
    if dtype != torch.float32:
        cast_module(module, dtype, keep_fp32=keep_fp32)
    return module.eval().requires_grad_(False)


def text_encoder_stored_dtype(spec: ModelSpec, paths: Mapping[str, Path]) -> torch.dtype:
    """The dtype the spec's text encoder weights are stored in (read from the file's header; float32 for the
    tiny-random encoder, which is built in float32, and when the file does not tell)."""
    from ..precision import stored_dtype
    from ..runtime import DTYPES

    if spec.base is None or "text_encoder" not in paths:
        return torch.float32
    return DTYPES[stored_dtype(paths["text_encoder"]) or "float32"]


def load_text_encoder(
    spec: ModelSpec,
    *,
    device: torch.device | str,
    dtype: torch.dtype | None = None,
    offline: bool = False,
) -> TextEncoder:
    """The spec's UMT5 text encoder and tokenizer on ``device``, computing in ``dtype``.

    ``dtype`` None: the dtype the weights are stored in (:func:`text_encoder_stored_dtype`; bf16 for
    ``models_t5_umt5-xxl-enc-bf16.pth``), which needs no converted copy: the file's tensors are
    memory-mapped and used as they are (LongLive itself upcasts to float32, a 22.7 GB copy).

    Raises:
        WeightsUnavailableError / ModelUnavailableError: the weights cannot be had or read.
    """
    from .umt5 import TextEncoder

    if spec.base is None:
        from .umt5 import build_tiny_text_encoder

        text = build_tiny_text_encoder(seed=0)  # the text part of build_tiny_random(seed=0)
        _place(text.text_encoder, device, dtype or torch.float32)
        return text
    paths = fetch_components(spec, components(spec, for_video=False), offline=offline)
    encoder, tokenizer = paths["text_encoder"], paths["tokenizer"]
    dtype = dtype or text_encoder_stored_dtype(spec, paths)
    try:
        tok = load_tokenizer(tokenizer)
        if encoder.is_file():
            return TextEncoder.from_wan_checkpoint(encoder, tok, torch_dtype=dtype, device=device)
        text = TextEncoder(load_umt5_folder(encoder, dtype), tok)
        _place(text.text_encoder, device, dtype)
        return text
    except ModelUnavailableError:
        raise
    except Exception as err:  # transformers, safetensors and torch.load each raise their own kinds
        where = _weights_in(encoder) if encoder.is_dir() else encoder
        raise ModelUnavailableError(f"cannot load the text encoder {where}: {err}") from None


def load_tokenizer(folder: Path):
    """``AutoTokenizer.from_pretrained(folder)`` (local files only here: fetched before).

    Raises:
        ModelUnavailableError: the folder holds no usable tokenizer (names the folder and what was wrong).
    """
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(str(folder))
    except Exception as err:  # OSError, ValueError, JSONDecodeError, UnicodeDecodeError, tokenizers' own
        where = folder / "tokenizer.json" if (folder / "tokenizer.json").is_file() else folder
        raise ModelUnavailableError(
            f"cannot load the tokenizer {where}: {type(err).__name__}: {err}. Download it again."
        ) from None


def _weights_in(folder: Path) -> str:
    """The weight file(s) of a Hugging Face model folder, for messages."""
    files = sorted(p.name for p in folder.iterdir() if p.suffix in (".safetensors", ".bin"))
    return str(folder / files[0]) if len(files) == 1 else f"{folder} ({', '.join(files) or 'no weight file'})"


def load_umt5_folder(folder: Path, dtype: torch.dtype | None):
    """A transformers ``UMT5EncoderModel`` folder, loaded strictly: every weight the model has must be in the
    file and every tensor of the file must be one of the model's (transformers itself would fill missing
    weights with random numbers and only warn).

    Raises:
        ModelUnavailableError: missing, unexpected or mis-shaped weights (names the file and the first key
            of each), or a file transformers cannot read.
    """
    import transformers
    from packaging.version import Version
    from transformers import UMT5EncoderModel

    kwargs: dict = {"output_loading_info": True}
    if dtype is not None:  # transformers renamed `torch_dtype` to `dtype` in 4.56
        kwargs["dtype" if Version(transformers.__version__) >= Version("4.56") else "torch_dtype"] = dtype
    model, info = UMT5EncoderModel.from_pretrained(str(folder), **kwargs)
    problems = []
    kinds = (
        ("missing_keys", "missing"),
        ("unexpected_keys", "unexpected"),
        ("mismatched_keys", "of another shape"),
    )
    for name, what in kinds:
        keys = sorted(str(k if isinstance(k, str) else k[0]) for k in info.get(name) or ())
        if keys:
            problems.append(f"{len(keys)} weights {what} (first: {keys[0]})")
    if problems:
        raise ModelUnavailableError(
            f"text encoder {_weights_in(folder)} does not fit UMT5: {'; '.join(problems)}. It is not a "
            "Wan2.1 UMT5 text encoder; download the right file"
        )
    model.requires_grad_(False)
    return model.eval()


def converted_cache_file(spec: ModelSpec, paths: Mapping[str, Path], dtype: torch.dtype) -> Path | None:
    """The converted-weights cache file that :func:`load_model` reads or writes for ``spec`` in ``dtype``
    (``paths`` from :func:`~longlive_cli.models.spec.fetch_components`), or None when the spec has no
    official generator checkpoint to convert."""
    from .checkpoints import cache_file

    if spec.base is None or spec.quantized or "generator" not in paths:
        return None
    return cache_file(
        converted_cache_dir(),
        paths["generator"],
        generator_key=spec.generator_key,
        lora=paths.get("lora"),
        lora_rank=spec.lora_rank,
        lora_alpha=spec.lora_alpha,
        dtype=dtype,
    )


def load_model(
    spec: ModelSpec,
    *,
    device: torch.device | str,
    dtype: torch.dtype,
    vae_dtype: torch.dtype | None = None,
    offline: bool = False,
) -> Model:
    """Load the spec's causal transformer (generator weights, LoRA and user LoRAs merged) and VAE on
    ``device``.

    The transformer runs in ``dtype``, except the modules diffusers keeps in float32
    (``WanTransformer3DModel._keep_in_fp32_modules``: time embedder, ``scale_shift_table``, norms), which
    stay float32, and the RoPE tables, which stay float32. The VAE runs in ``vae_dtype`` (None: float32 on
    the CPU, ``dtype`` elsewhere; :mod:`longlive_cli.precision`). Converted generator weights are cached
    under :func:`converted_cache_dir` (with the LoRAs merged) so later runs memory-map them; a base or
    ``tiny-random`` transformer gets the user LoRAs merged in place.

    Raises:
        WeightsUnavailableError / ModelUnavailableError: the weights cannot be had or read.
    """
    from diffusers import WanTransformer3DModel

    from ..precision import vae_dtype as vae_rule
    from ..runtime import DTYPE_NAMES, DTYPES
    from .transformer import CausalWanTransformer

    if vae_dtype is None:
        vae_dtype = DTYPES[vae_rule(torch.device(device).type, DTYPE_NAMES[dtype])]
    keep = tuple(WanTransformer3DModel._keep_in_fp32_modules or ())
    if spec.base is None:
        wan = _tiny_transformer(spec)
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
    transformer = CausalWanTransformer(wan if spec.quantized else _place(wan, device, dtype, keep_fp32=keep))
    return Model(spec=spec, transformer=transformer, vae=_place(vae, device, vae_dtype))


def tiny_random_parts(spec: ModelSpec, seed: int = 0) -> tuple[WanTransformer3DModel, AutoencoderKLWan]:
    """The tiny random transformer and VAE of a ``base: null`` spec, built by its architecture's declared
    builder (:attr:`longlive_cli.architectures.Architecture.tiny_random`: Wan2.1's layout, or Wan2.2's with
    48 latent channels for LongLive 2.0); identical for the same ``seed``."""
    import importlib

    from ..registry import architecture_info

    module, _, function = architecture_info(spec.architecture).tiny_random.partition(":")
    wan, vae = getattr(importlib.import_module(module), function)(seed)[:2]
    return wan, vae


def _tiny_transformer(spec: ModelSpec) -> WanTransformer3DModel:
    return tiny_random_parts(spec)[0]


def _tiny_vae(spec: ModelSpec) -> AutoencoderKLWan:
    return tiny_random_parts(spec)[1]


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
    """The network of the spec's decoder, loaded by the loader its declaration names
    (:meth:`longlive_cli.registry.DecoderInfo.network_loader`) from its file (role ``decoder``) or the
    model's VAE (role ``vae``); tiny random weights for tiny-random (``base`` None).

    Raises:
        ModelError: the file does not fit (names it and the first mismatched key), or the decoder's plugin
            cannot be loaded.
    """
    from ..registry import decoder_info

    info = decoder_info(spec.decoder)
    if spec.base is None and info.uses_model_vae and spec.architecture != DEFAULT_ARCHITECTURE:
        return _tiny_vae(spec)  # tiny random weights of the model's own VAE, in its latent space (Wan2.2)
    path = None if spec.base is None else paths["vae" if info.uses_model_vae else "decoder"]
    return info.network_loader()(path)


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
