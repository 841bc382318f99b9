"""INT8 quantization of the causal Wan transformer with torchao, and its safetensors file format.

Schemes (torchao configs, per-row symmetric int8 weights):

* ``w8a8``: ``Int8DynamicActivationInt8WeightConfig`` -- int8 weights, activations quantized per token
  at run time, int8 matmuls;
* ``w8``: ``Int8WeightOnlyConfig`` -- int8 weights dequantized inside the matmul;
* ``fp8``: ``Float8DynamicActivationFloat8WeightConfig`` -- only in memory (``generate --quantize fp8``)
  on CUDA GPUs of compute capability >= 8.9; refused elsewhere.

Only the ``nn.Linear`` layers of the transformer blocks (self/cross-attention projections and the FFN)
are quantized: they hold ~98% of the parameters and nearly all FLOPs. Kept in the compute dtype
(:data:`KEEP_PREFIXES`):

* ``condition_embedder.*`` (timestep MLP, ``time_proj`` producing the per-block AdaLN modulation, and
  the text projection): they run once per pass on one timestep vector, or once per prompt, so they cost
  almost nothing, and their outputs scale/shift every block's activations, so an int8 error there is
  applied to every token of every layer;
* ``proj_out``: the last projection to the 16 latent channels; its error lands directly on the predicted
  flow, which the sampler integrates;
* ``patch_embedding`` (a Conv3d, not a Linear, named here so the intent is explicit).

The saved file is plain safetensors (no pickling at all): each quantized weight is stored as the inner
tensors of its torchao tensor (``<key>:qdata``, ``<key>:scale``, ``<key>:zero_point``), every other
tensor as is. Metadata records the format, scheme, torchao version, the source model, the transformer
config and a SHA-256 of all tensor bytes. Loading rebuilds the transformer from the config, applies the
same quantization (which fixes the tensor classes and shapes) and copies the stored inner tensors in,
checking names, shapes, dtypes, the digest and the versions.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from ..errors import InputError
from ..logs import quiet_noisy_imports
from .spec import ModelUnavailableError

if TYPE_CHECKING:
    from diffusers import WanTransformer3DModel

SCHEMES = ("w8a8", "w8", "fp8")
SAVABLE_SCHEMES = ("w8a8", "w8")
QUANTIZED_FILE = "transformer-int8.safetensors"
FORMAT = "longlive-quantized-transformer/1"
KEEP_PREFIXES = ("condition_embedder.", "proj_out", "patch_embedding")
_INNER_SEP = ":"


class SchemeError(InputError):
    """An unknown scheme, or one this device cannot run (a usage error, exit code 2)."""


class QuantizedModelError(ModelUnavailableError):
    """A quantized transformer file that cannot be used: tampered, mismatched or from another version."""


def torchao_version() -> str:
    quiet_noisy_imports()
    import torchao

    return torchao.__version__


def check_scheme(scheme: str, device: torch.device | str = "cpu") -> str:
    """``scheme`` if known and runnable on ``device``.

    Raises:
        SchemeError: unknown scheme, or ``fp8`` without a CUDA GPU of compute capability >= 8.9.
    """
    if scheme not in SCHEMES:
        raise SchemeError(f"unknown quantization scheme {scheme!r}; choose one of {', '.join(SCHEMES)}")
    if scheme == "fp8":
        dev = torch.device(device)
        capability = torch.cuda.get_device_capability(dev) if dev.type == "cuda" else None
        if capability is None or capability < (8, 9):
            where = f"compute capability {capability[0]}.{capability[1]}" if capability else str(dev)
            raise SchemeError(
                f"--quantize fp8 needs a CUDA GPU of compute capability >= 8.9 (Ada, Hopper or newer); "
                f"this run is on {where}. Use --quantize int8 or int8-weights."
            )
    return scheme


def torchao_config(scheme: str):
    """The torchao config object for ``scheme``."""
    quiet_noisy_imports()
    from torchao.quantization import (
        Float8DynamicActivationFloat8WeightConfig,
        Int8DynamicActivationInt8WeightConfig,
        Int8WeightOnlyConfig,
    )

    # set_inductor_config=False: torchao would otherwise change torch._inductor's global settings for the
    # whole process (coordinate-descent tuning, ...), which slows the first compile and changes other code.
    if scheme == "w8a8":
        return Int8DynamicActivationInt8WeightConfig(set_inductor_config=False)
    if scheme == "w8":
        return Int8WeightOnlyConfig(set_inductor_config=False)
    if scheme == "fp8":
        return Float8DynamicActivationFloat8WeightConfig(set_inductor_config=False)
    raise SchemeError(f"unknown quantization scheme {scheme!r}; choose one of {', '.join(SCHEMES)}")


def should_quantize(module: torch.nn.Module, fqn: str) -> bool:
    """Linear layers outside :data:`KEEP_PREFIXES` (see the module docstring for why)."""
    return isinstance(module, torch.nn.Linear) and not fqn.startswith(KEEP_PREFIXES)


def is_quantized(wan: torch.nn.Module) -> bool:
    """True when some weight of ``wan`` is a torchao tensor (already quantized)."""
    return any(_is_subclass(p) for p in wan.parameters())


def _is_subclass(t: torch.Tensor) -> bool:
    return (
        type(t) is not torch.Tensor and type(t) is not torch.nn.Parameter and hasattr(t, "__tensor_flatten__")
    )


def _tensor_bytes(t: torch.Tensor) -> int:
    if _is_subclass(t):
        names, _ = t.__tensor_flatten__()  # type: ignore[attr-defined]
        return sum(_tensor_bytes(getattr(t, n)) for n in names)
    return t.numel() * t.element_size()


@dataclass(frozen=True)
class QuantizeSummary:
    scheme: str
    quantized_layers: int
    kept_layers: int
    bytes_before: int
    bytes_after: int


def quantize_transformer(
    wan: WanTransformer3DModel, scheme: str, *, on_layer: Callable[[str, int, int], None] | None = None
) -> QuantizeSummary:
    """Quantize ``wan``'s block Linear layers in place with torchao.

    ``on_layer(name, index, total)`` is called after each quantized layer (for progress).

    Raises:
        SchemeError: unknown scheme. QuantizedModelError: ``wan`` is already quantized.
    """
    if is_quantized(wan):
        raise QuantizedModelError("the model is already quantized; quantize its float original instead")
    config = torchao_config(scheme)
    from torchao.quantization import quantize_

    before = sum(_tensor_bytes(t) for t in wan.state_dict().values())
    targets = [(n, m) for n, m in wan.named_modules() if should_quantize(m, n)]
    kept = sum(isinstance(m, torch.nn.Linear) for _, m in wan.named_modules()) - len(targets)
    for i, (name, module) in enumerate(targets):
        # quantize_ on the layer itself: its filter sees fqn "", so pass one that accepts it.
        quantize_(module, config, filter_fn=lambda m, _fqn: isinstance(m, torch.nn.Linear))
        if on_layer is not None:
            on_layer(name, i + 1, len(targets))
    after = sum(_tensor_bytes(t) for t in wan.state_dict().values())
    return QuantizeSummary(scheme, len(targets), kept, before, after)


def _flat_tensors(wan: torch.nn.Module) -> dict[str, torch.Tensor]:
    """State dict with every torchao tensor split into its inner plain tensors (``key:inner``)."""
    flat: dict[str, torch.Tensor] = {}
    for key, t in wan.state_dict().items():
        if _is_subclass(t):
            names, _ = t.__tensor_flatten__()
            for n in names:
                flat[f"{key}{_INNER_SEP}{n}"] = getattr(t, n)
        else:
            flat[key] = t
    return flat


def _digest(tensors: dict[str, torch.Tensor]) -> str:
    h = hashlib.sha256()
    for key in sorted(tensors):
        t = tensors[key].detach().contiguous().cpu()
        h.update(f"{key}|{t.dtype}|{tuple(t.shape)}\n".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def save_quantized(
    wan: WanTransformer3DModel, path: str | Path, *, scheme: str, source: str, config: dict
) -> None:
    """Write the quantized ``wan`` to ``path`` (safetensors, see the module docstring)."""
    from safetensors.torch import save_file

    if scheme not in SAVABLE_SCHEMES:
        raise SchemeError(f"scheme {scheme!r} can be used in memory only; save with w8a8 or w8")
    tensors = {k: v.detach().contiguous().cpu() for k, v in _flat_tensors(wan).items()}
    meta = {
        "format": FORMAT,
        "scheme": scheme,
        "torchao_version": torchao_version(),
        "torch_version": torch.__version__,
        "source_model": source,
        "transformer_config": json.dumps(config, sort_keys=True),
        "sha256": _digest(tensors),
    }
    save_file(tensors, str(path), metadata=meta)


def read_quantized_metadata(path: str | Path) -> dict[str, str]:
    """The metadata of a quantized transformer file.

    Raises:
        QuantizedModelError: unreadable, not safetensors, or not a file of this format.
    """
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
    except Exception as err:  # safetensors raises its own error types for a broken header
        raise QuantizedModelError(f"{path}: not a readable quantized transformer file ({err})") from None
    if meta.get("format") != FORMAT:
        raise QuantizedModelError(
            f"{path}: not a longlive quantized transformer (format {meta.get('format')!r})"
        )
    return meta


def _major(version: str) -> str:
    return version.split("+")[0].split(".")[0]


def load_quantized(
    path: str | Path, *, scheme: str, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32
) -> WanTransformer3DModel:
    """Rebuild the quantized transformer saved at ``path`` on ``device`` in compute ``dtype``.

    Raises:
        QuantizedModelError: scheme or torchao major version differs from the file's, the file was
            changed after writing (digest), or its tensors do not fit the rebuilt model.
    """
    from diffusers import WanTransformer3DModel
    from safetensors.torch import load_file

    meta = read_quantized_metadata(path)
    if meta.get("scheme") != scheme:
        raise QuantizedModelError(
            f"{path}: written with scheme {meta.get('scheme')!r}, but the model spec says {scheme!r}"
        )
    here = torchao_version()
    if _major(meta.get("torchao_version", "?")) != _major(here):
        raise QuantizedModelError(
            f"{path}: written with torchao {meta.get('torchao_version')}, this is torchao {here} (another "
            f"major version); quantize the float model again with this version"
        )
    try:
        tensors = load_file(str(path))
        config = json.loads(meta["transformer_config"])
    except Exception as err:
        raise QuantizedModelError(f"{path}: cannot read the tensors ({err})") from None
    if _digest(tensors) != meta.get("sha256"):
        raise QuantizedModelError(f"{path}: contents do not match the recorded SHA-256 (changed or damaged)")

    with torch.random.fork_rng(devices=[]):
        wan = WanTransformer3DModel(**config)
    # Cast only when asked, as the registry does (float32 stays as built).
    wan = wan.to(device=device) if dtype == torch.float32 else wan.to(device=device, dtype=dtype)
    wan = wan.eval().requires_grad_(False)
    quantize_transformer(wan, scheme)
    expected = {k: v for k, v in _flat_tensors(wan).items()}
    if set(expected) != set(tensors):
        missing, extra = sorted(set(expected) - set(tensors)), sorted(set(tensors) - set(expected))
        raise QuantizedModelError(
            f"{path}: tensors do not fit the {scheme} layout of this torchao "
            f"(missing {missing[:3]}, unexpected {extra[:3]})"
        )
    with torch.no_grad():
        for key, target in expected.items():
            stored = tensors[key]
            if tuple(stored.shape) != tuple(target.shape) or stored.dtype.is_floating_point != (
                target.dtype.is_floating_point
            ):
                raise QuantizedModelError(
                    f"{path}: {key} is {stored.dtype} {tuple(stored.shape)}, expected "
                    f"{target.dtype} {tuple(target.shape)}"
                )
            target.copy_(stored)
    return wan
