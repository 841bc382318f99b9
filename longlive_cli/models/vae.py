"""The Wan2.1 VAE (diffusers ``AutoencoderKLWan``) from either release of Wan2.1-T2V-1.3B.

:func:`load_vae` reads the diffusers folder (``Wan-AI/Wan2.1-T2V-1.3B-Diffusers``, ``vae/``) or the original
``Wan2.1_VAE.pth`` of ``Wan-AI/Wan2.1-T2V-1.3B`` (converted with diffusers' own
``convert_wan_vae_to_diffusers``, the function behind ``AutoencoderKLWan.from_single_file``, without its Hub
config lookup).
:func:`tiny_vae_config` is the tiny-random preset's VAE. Decoding is :mod:`longlive_cli.decoders.wan`.
"""

from __future__ import annotations

from pathlib import Path

import torch
from diffusers import AutoencoderKLWan
from torch import Tensor

from .keys import key_list, natural_key

__all__ = ["WAN21_LATENT_MEAN", "WAN21_LATENT_STD", "load_vae", "tiny_vae_config"]


# Wan2.1 VAE latent statistics (as in the Wan2.1 release and diffusers' AutoencoderKLWan defaults).
WAN21_LATENT_MEAN = (
    -0.7571, -0.7089, -0.9113, 0.1075, -0.1745, 0.9653, -0.1517, 1.5508,
    0.4134, -0.0715, 0.5517, -0.3632, -0.1922, -0.9497, 0.2503, -0.2921,
)  # fmt: skip
WAN21_LATENT_STD = (
    2.8184, 1.4541, 2.3275, 2.6558, 1.2196, 1.7708, 2.6052, 2.0743,
    3.2687, 2.1526, 2.8652, 1.5579, 1.6382, 1.1253, 2.8251, 1.9160,
)  # fmt: skip


def tiny_vae_config() -> dict:
    """Keyword arguments for ``AutoencoderKLWan(**cfg)``: the smallest VAE of the Wan2.1 family.

    Same structure as the real Wan2.1 VAE (z_dim 16, 4 stages, 8× spatial and 4× temporal compression
    via ``temperal_downsample [False, True, True]``, the real latents_mean/std) but 4 channels in every
    stage (``base_dim 4``, ``dim_mult [1, 1, 1, 1]``) and the fewest residual blocks, because the Wan
    decoder's per-frame causal convolutions are slow on CPU at any width (~0.3 s per 3-latent-frame
    block at 128x80 on 2 cores). For tests and the ``tiny-random`` preset; random weights are fine.
    """
    return {
        "base_dim": 4,
        "z_dim": 16,
        "dim_mult": [1, 1, 1, 1],
        "num_res_blocks": 0,
        "attn_scales": [],
        "temperal_downsample": [False, True, True],
        "dropout": 0.0,
        "latents_mean": list(WAN21_LATENT_MEAN),
        "latents_std": list(WAN21_LATENT_STD),
    }


# ---------------------------------------------------------------------- loading
_SINGLE_FILE_SUFFIXES = (".pth", ".pt", ".bin", ".ckpt", ".safetensors")


def load_vae(
    source: str | Path,
    *,
    torch_dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
    config: dict | None = None,
) -> AutoencoderKLWan:
    """Load the Wan2.1 VAE as a diffusers ``AutoencoderKLWan`` from a local folder or single file.

    Args:
        source: one of
            * a diffusers model folder (``config.json`` + weights, as written by ``save_pretrained``), or a
              diffusers pipeline folder with such a folder in ``vae/`` (``Wan-AI/Wan2.1-T2V-1.3B-Diffusers``):
              ``AutoencoderKLWan.from_pretrained``;
            * an original Wan2.1 VAE file (``Wan2.1_VAE.pth`` of ``Wan-AI/Wan2.1-T2V-1.3B``, the key layout
              of Wan2.1 ``wan/modules/vae.py`` ``WanVAE_``; ``.pth``/``.pt``/``.bin``/``.ckpt`` read with
              ``torch.load(weights_only=True, mmap=True)``, ``.safetensors`` with safetensors): keys
              converted by diffusers' ``convert_wan_vae_to_diffusers`` (what ``from_single_file`` uses;
              diffusers-layout keys pass through it unchanged) and loaded strictly into
              ``AutoencoderKLWan(**config)``. Nothing is fetched from the Hub.
        torch_dtype: parameter dtype. None: float32 for a single file (the released file is float32 and
            LongLive decodes in float32); diffusers' default for a folder.
        device: where to put the model (None: CPU).
        config: ``AutoencoderKLWan`` keyword arguments for a single file; None means diffusers' defaults,
            which are the Wan2.1 VAE (base_dim 96, z_dim 16, dim_mult [1, 2, 4, 4], 2 residual blocks,
            temporal downsample [False, True, True], Wan2.1 latents_mean/std; Wan2.1 ``_video_vae``).
            diffusers' converter knows only that block layout (3 residual blocks + 1 upsampler per decoder
            stage), so a ``config`` may change widths, not depth. Not allowed with a folder.

    Returns:
        ``AutoencoderKLWan`` in eval mode with gradients off.

    Raises:
        FileNotFoundError: ``source`` does not exist, or a folder has no ``config.json`` (nor ``vae/``).
        ValueError: ``config`` given with a folder; a folder's or a single file's weights do not fit the
            model (missing, unexpected or mis-shaped keys named, with the file); a single file is not a flat
            tensor dict or has an unknown suffix.
    """
    path = Path(source)
    if path.is_dir():
        if config is not None:
            raise ValueError(
                f"{path}: `config` applies to single-file checkpoints only; a folder has its own"
            )
        # low_cpu_mem_usage=False: without the optional `accelerate`, diffusers warns and falls back anyway.
        kwargs: dict = {"low_cpu_mem_usage": False}
        if torch_dtype is not None:
            kwargs["torch_dtype"] = torch_dtype
        kwargs["output_loading_info"] = True  # diffusers fills missing weights at random and only warns
        if (path / "config.json").is_file():
            vae, info = AutoencoderKLWan.from_pretrained(str(path), **kwargs)
            _check_loading_info(info, path)
        elif (path / "vae" / "config.json").is_file():
            vae, info = AutoencoderKLWan.from_pretrained(str(path), subfolder="vae", **kwargs)
            _check_loading_info(info, path / "vae")
        else:
            raise FileNotFoundError(
                f"{path}: neither config.json nor vae/config.json found; pass a diffusers AutoencoderKLWan "
                "folder, the Wan2.1-T2V-1.3B-Diffusers folder, or the file Wan2.1_VAE.pth"
            )
    elif path.is_file():
        vae = _vae_from_single_file(path, config=config, dtype=torch_dtype or torch.float32)
    else:
        raise FileNotFoundError(f"{path}: no such VAE file or folder")
    if device is not None:
        vae = vae.to(device)
    return vae.eval().requires_grad_(False)


def _check_loading_info(info: dict, folder: Path) -> None:
    """Strict loading for a diffusers folder: no weight of the model missing from the file, none of the file
    left over, none of another shape.

    Raises:
        ValueError: naming the folder's weight file and the first key of each kind.
    """
    problems = []
    for name, what in (
        ("missing_keys", "missing"),
        ("unexpected_keys", "unexpected"),
        ("mismatched_keys", "of another shape"),
    ):
        keys = sorted(str(k if isinstance(k, str) else k[0]) for k in info.get(name) or ())
        if keys:
            problems.append(f"{len(keys)} weights {what} (first: {keys[0]})")
    if problems:
        files = sorted(p.name for p in folder.iterdir() if p.suffix in (".safetensors", ".bin"))
        raise ValueError(
            f"VAE {folder / files[0] if len(files) == 1 else folder} does not fit AutoencoderKLWan: "
            f"{'; '.join(problems)}. It is not a Wan2.1 VAE; download the right file"
        )


def _vae_from_single_file(path: Path, *, config: dict | None, dtype: torch.dtype) -> AutoencoderKLWan:
    from diffusers.loaders.single_file_utils import convert_wan_vae_to_diffusers

    if path.suffix not in _SINGLE_FILE_SUFFIXES:
        raise ValueError(
            f"{path}: unknown checkpoint suffix {path.suffix!r}; expected one of "
            f"{', '.join(_SINGLE_FILE_SUFFIXES)} (e.g. Wan2.1_VAE.pth) or a diffusers folder"
        )
    original = _load_state_dict(path)
    converted = convert_wan_vae_to_diffusers(original)
    with torch.device("meta"):  # every parameter comes from the file: skip the random init
        vae = AutoencoderKLWan(**(config or {}))
    expected = {k: tuple(v.shape) for k, v in vae.state_dict().items()}
    missing = sorted(expected.keys() - converted.keys(), key=natural_key)
    unexpected = sorted(converted.keys() - expected.keys(), key=natural_key)
    if missing or unexpected:
        raise ValueError(
            f"{path}: after diffusers' convert_wan_vae_to_diffusers the keys do not fit AutoencoderKLWan("
            f"{'defaults' if not config else 'config'}): missing {key_list(missing)}; unexpected "
            f"{key_list(unexpected)}. Pass the original Wan2.1 VAE file (Wan2.1_VAE.pth, wan/modules/vae.py "
            "layout) with the config it was built with; the converter handles only Wan2.1's block layout "
            "(num_res_blocks=2, four stages)."
        )
    bad = [
        f"{k} {tuple(v.shape)} (model expects {expected[k]})"
        for k, v in sorted(converted.items(), key=lambda kv: natural_key(kv[0]))
        if tuple(v.shape) != expected[k]
    ]
    if bad:
        raise ValueError(
            f"{path}: tensor shapes do not fit AutoencoderKLWan({'defaults' if not config else 'config'}): "
            f"{key_list(bad)}. Pass the `config` (base_dim, z_dim, dim_mult) this VAE was built with."
        )
    vae.load_state_dict({k: v.to(dtype) for k, v in converted.items()}, strict=True, assign=True)
    return vae


def _load_state_dict(path: Path) -> dict[str, Tensor]:
    """Flat ``{name: tensor}`` from a VAE single file (safetensors or ``torch.load(weights_only=True)``)."""
    from .weights import load_flat_state_dict

    return load_flat_state_dict(
        path, "VAE file", hint="pass the original Wan2.1 VAE file itself (Wan2.1_VAE.pth)"
    )
