"""``longlive quantize``: an INT8 copy of a model, written as a model folder usable as ``--model DIR``.

The folder holds ``longlive-model.yaml`` (the source's ``base``, ``text_encoder``, ``tokenizer`` and ``vae``,
local paths made absolute, plus ``quantized:`` and ``scheme:``) and the quantized transformer in the format
of :mod:`longlive_cli.models.int8`. It is written to a temporary folder beside the target and renamed at
the end (:mod:`longlive_cli.fileio`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from .errors import InputError, OutputError
from .fileio import atomic_output
from .hub import parse_source
from .models import int8
from .models.int8 import (
    QUANTIZED_FILE,
    SAVABLE_SCHEMES,
    QuantizeSummary,
    SchemeError,
    check_scheme,
    quantize_transformer,
    torchao_version,
)
from .models.loaders import load_model
from .models.spec import SPEC_FILE_IN_DIR, ModelSpec

__all__ = ["quantized_spec_data", "write_quantized_model"]


def _source_value(value: str | None, spec: ModelSpec) -> str | None:
    """A spec source made absolute when local (so the new folder refers to the same files)."""
    if value is None:
        return None
    src = parse_source(value, relative_to=spec.spec_dir)
    return str(src) if src.repo is not None else str(Path(src.path).resolve())


def quantized_spec_data(spec: ModelSpec, scheme: str) -> dict[str, Any]:
    """The ``longlive-model.yaml`` mapping of a quantized copy of ``spec``: its ``architecture`` first (the
    sampler, latent space and tiny random model follow from it), then its sources and numbers."""
    data: dict[str, Any] = {"architecture": spec.architecture, "base": _source_value(spec.base, spec)}
    for key in ("text_encoder", "tokenizer", "vae"):
        if getattr(spec, key) is not None:
            data[key] = _source_value(getattr(spec, key), spec)
    data["quantized"] = QUANTIZED_FILE
    data["scheme"] = scheme
    data["fps"] = spec.geometry.fps
    data["frames_per_block"] = spec.geometry.frames_per_block
    data["native_resolution"] = list(spec.geometry.native_resolution)
    for key, value in asdict(spec.sampler).items():
        data["sampler" if key == "name" else key] = list(value) if isinstance(value, tuple) else value
    return data


def write_quantized_model(
    spec: ModelSpec,
    out_dir: str | Path,
    *,
    scheme: str,
    force: bool = False,
    offline: bool = False,
    on_layer: Callable[[str, int, int], None] | None = None,
) -> QuantizeSummary:
    """Load ``spec`` (CPU, float32, LoRA merged), quantize it and write the model folder ``out_dir``.

    ``on_layer(name, index, total)`` is called after each quantized layer. Everything is written into a
    temporary folder beside ``out_dir`` and renamed at the end; on any error nothing is left behind.

    Raises:
        SchemeError / InputError: unknown or unsavable scheme, or ``spec`` already quantized (exit 2).
        OutputError: ``out_dir`` exists without ``force``, or writing failed (exit 4).
        ModelError: the model cannot be loaded (exit 3).
    """
    import yaml

    check_scheme(scheme, "cpu")
    if scheme not in SAVABLE_SCHEMES:
        raise SchemeError(f"scheme {scheme!r} can be used in memory only; save with w8a8 or w8")
    out = Path(out_dir)
    if out.exists() and not force:
        raise OutputError(f"{out} already exists (use --force to replace it)")
    if spec.quantized is not None:
        raise InputError(f"model {spec.name} is already quantized ({spec.scheme}); quantize its float source")
    model = load_model(spec, device="cpu", dtype=torch.float32, offline=offline)
    wan = model.transformer.wan
    summary = quantize_transformer(wan, scheme, on_layer=on_layer)
    config = {k: (list(v) if isinstance(v, tuple) else v) for k, v in dict(wan.config).items()}
    config = {k: v for k, v in config.items() if not k.startswith("_")}
    header = f"# quantized by longlive quantize from {spec.name} ({scheme}, torchao {torchao_version()})\n"
    body = yaml.safe_dump(quantized_spec_data(spec, scheme), sort_keys=False)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        with atomic_output(out, folder=True) as tmp:
            int8.save_quantized(wan, tmp / QUANTIZED_FILE, scheme=scheme, source=spec.name, config=config)
            (tmp / SPEC_FILE_IN_DIR).write_text(header + body, encoding="utf-8")
    except OSError as err:
        raise OutputError(f"cannot write {out}: {err}") from None
    return summary
