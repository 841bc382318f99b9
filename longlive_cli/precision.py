"""Precision per part: the dtype each part of a model computes in, chosen for the device. Torch-free.

The rule (``longlive info`` prints it; ``--dry-run`` and :attr:`LongLive.dtypes
<longlive_cli.api.LongLive.dtypes>` apply it):

* **text encoder**: the dtype its weights are stored in (bf16 for the UMT5-XXL ``.pth`` of
  ``longlive-1.3b``), unless ``--text-dtype`` asks for another. Computing in the stored dtype needs no
  converted copy: the 11.4 GB bf16 file is memory-mapped as it is, where a float32 copy would take 22.7 GB.
* **transformer**: ``--dtype`` (auto: bf16 on CUDA, float32 on the CPU). The modules diffusers keeps in
  float32 (``WanTransformer3DModel._keep_in_fp32_modules``: the time embedder, the modulation tables
  ``scale_shift_table``, the norms) stay float32, and the RoPE tables keep the precision they are built in
  (float32), whatever ``--dtype`` is.
* **VAE**: float32 on the CPU (0.5 GB; PyTorch's bf16 ``Conv3d`` takes a slow reference path on CPUs
  without native bf16 convolutions), the transformer's dtype on CUDA.

Dtypes are named ``bf16``, ``fp16`` and ``float32`` here (``runtime.DTYPES`` maps them to torch dtypes).
:func:`stored_dtype` reads a weight file's dtype from its header without loading it.
"""

from __future__ import annotations

import json
import struct
import zipfile
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "BYTES_PER_ELEMENT",
    "DTYPE_NAMES",
    "RULES",
    "PartDtypes",
    "choose_dtypes",
    "safetensors_header",
    "stored_dtype",
    "text_stored_dtype",
    "transformer_dtype",
    "vae_dtype",
]

DTYPE_NAMES = ("bf16", "fp16", "float32")
#: Bytes per element of each dtype name.
BYTES_PER_ELEMENT = {"bf16": 2, "fp16": 2, "float32": 4, "float64": 8}

#: One line per part: the rule, for ``longlive info``.
RULES = {
    "text_encoder": "the dtype its weights are stored in (bf16 for longlive-1.3b), or --text-dtype",
    "transformer": "--dtype (auto: bf16 on CUDA, float32 on the CPU); time embedder, modulation tables, "
    "norms and RoPE tables in float32 or better",
    "vae": "float32 on the CPU; the transformer's dtype on CUDA",
}

_SAFETENSORS_DTYPES = {"BF16": "bf16", "F16": "fp16", "F32": "float32"}
_TORCH_STORAGES = {b"BFloat16Storage": "bf16", b"HalfStorage": "fp16", b"FloatStorage": "float32"}


@dataclass(frozen=True)
class PartDtypes:
    """The compute dtype of each part, as a name of :data:`DTYPE_NAMES`."""

    text_encoder: str
    transformer: str
    vae: str

    def as_dict(self) -> dict[str, str]:
        """``{"text_encoder": ..., "transformer": ..., "vae": ...}``."""
        return {"text_encoder": self.text_encoder, "transformer": self.transformer, "vae": self.vae}

    def describe(self) -> str:
        """One line, e.g. ``text encoder bf16, transformer float32, VAE float32``."""
        return f"text encoder {self.text_encoder}, transformer {self.transformer}, VAE {self.vae}"


def _check(name: str, what: str) -> str:
    if name not in DTYPE_NAMES:
        raise ValueError(f"unknown {what} {name!r}; use auto, {', '.join(DTYPE_NAMES)}")
    return name


def choose_dtypes(
    device: str, *, dtype: str = "auto", text_dtype: str = "auto", text_stored: str | None = None
) -> PartDtypes:
    """Apply the rule (module docstring) for ``device`` (``cpu`` or ``cuda``).

    Args:
        device: where the model runs.
        dtype: ``--dtype``: the transformer's (``auto``: bf16 on CUDA, float32 on the CPU).
        text_dtype: ``--text-dtype``: the text encoder's (``auto``: ``text_stored``).
        text_stored: the dtype the text encoder's weights are stored in (:func:`stored_dtype`); None when
            unknown, then float32.

    Raises:
        ValueError: an unknown dtype name.
    """
    transformer = transformer_dtype(device, dtype)
    text = (text_stored or "float32") if text_dtype == "auto" else _check(text_dtype, "text dtype")
    return PartDtypes(text_encoder=text, transformer=transformer, vae=vae_dtype(device, transformer))


def transformer_dtype(device: str, dtype: str = "auto") -> str:
    """The transformer's rule: ``dtype`` (``--dtype``), or for ``auto`` bf16 on CUDA and float32 on the CPU.

    Raises:
        ValueError: an unknown dtype name.
    """
    return ("bf16" if device == "cuda" else "float32") if dtype == "auto" else _check(dtype, "dtype")


def vae_dtype(device: str, transformer: str) -> str:
    """The VAE's rule: float32 on the CPU, the ``transformer``'s dtype on CUDA."""
    return "float32" if device == "cpu" else transformer


def stored_dtype(path: str | Path) -> str | None:
    """The floating dtype a weight file or folder is stored in, read from headers only (nothing is loaded).

    * ``.safetensors``: the dtype holding the most elements, from the JSON header;
    * a folder: the same over its ``*.safetensors`` files (diffusers / transformers model folders), else
      ``torch_dtype`` / ``dtype`` in its ``config.json``;
    * a ``torch.save`` zip file (``.pth``, ``.pt``): the storage type named in its pickle when there is
      exactly one floating type (``BFloat16Storage`` -> ``bf16``).

    Returns None when the file cannot tell (missing, another format, several floating types). Never raises
    for an unreadable file.
    """
    path = Path(path)
    try:
        if path.is_dir():
            files = sorted(path.glob("*.safetensors"))
            if files:
                return _majority(_safetensors_counts(f) for f in files)
            config = path / "config.json"
            if config.is_file():
                data = json.loads(config.read_text())
                name = str(data.get("torch_dtype") or data.get("dtype") or "")
                return {"bfloat16": "bf16", "float16": "fp16", "float32": "float32"}.get(name)
            return None
        if path.suffix == ".safetensors":
            return _majority([_safetensors_counts(path)])
        if zipfile.is_zipfile(path):
            return _torch_zip_dtype(path)
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, struct.error):
        return None
    return None


def safetensors_header(path: str | Path) -> dict:
    """The JSON header of a safetensors file (tensor entries and ``__metadata__``), read without loading.

    Raises:
        OSError: unreadable. ValueError: not a safetensors file.
    """
    with Path(path).open("rb") as f:
        raw = f.read(8)
        if len(raw) != 8:
            raise ValueError(f"{path}: not a safetensors file")
        (length,) = struct.unpack("<Q", raw)
        if length > 100_000_000:
            raise ValueError(f"{path}: implausible safetensors header")
        header = json.loads(f.read(length))
    if not isinstance(header, dict):
        raise ValueError(f"{path}: not a safetensors file")
    return header


def _safetensors_counts(path: Path) -> dict[str, int]:
    """Elements per dtype name in a safetensors file, from its header."""
    header = safetensors_header(path)
    counts: dict[str, int] = {}
    for name, entry in header.items():
        if name == "__metadata__" or entry.get("dtype") not in _SAFETENSORS_DTYPES:
            continue
        numel = 1
        for d in entry["shape"]:
            numel *= int(d)
        key = _SAFETENSORS_DTYPES[entry["dtype"]]
        counts[key] = counts.get(key, 0) + numel
    return counts


def _majority(counts_per_file) -> str | None:
    total: dict[str, int] = {}
    for counts in counts_per_file:
        for k, v in counts.items():
            total[k] = total.get(k, 0) + v
    return max(total, key=lambda k: total[k]) if total else None


def _torch_zip_dtype(path: Path) -> str | None:
    with zipfile.ZipFile(path) as z:
        pickles = [n for n in z.namelist() if n == "data.pkl" or n.endswith("/data.pkl")]
        if len(pickles) != 1 or z.getinfo(pickles[0]).file_size > 64_000_000:
            return None
        data = z.read(pickles[0])
    found = {name for storage, name in _TORCH_STORAGES.items() if storage in data}
    return found.pop() if len(found) == 1 else None


def text_stored_dtype(spec) -> str | None:
    """The stored dtype of ``spec``'s text encoder without loading or downloading anything: read from the
    file's header when it is local (or in the Hugging Face cache), else the known dtype of a preset's file,
    else None. The tiny-random encoder is built in float32. Torch-free.
    """
    from .hub import WeightsUnavailableError, fetch
    from .models.spec import KNOWN_DTYPES, components

    if spec.base is None:
        return "float32"
    part = next(p for p in components(spec, for_video=False) if p.role == "text_encoder")
    try:
        found = stored_dtype(fetch(part.source, offline=True, folder=part.folder))
    except (WeightsUnavailableError, OSError, ValueError):
        found = None
    return found or KNOWN_DTYPES.get(str(part.source))
