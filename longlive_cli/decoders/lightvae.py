"""LightVAE (lightx2v ``lightvaew2_1``): the Wan2.1 VAE with every channel count cut to a quarter, loaded as a
diffusers ``AutoencoderKLWan`` (no model code of its own) and decoded by
:class:`longlive_cli.decoders.wan.StreamingDecoder` unchanged.

What it is (ModelTC/LightX2V ``lightx2v/models/video_encoders/hf/wan/vae.py``): ``WanVAE(use_lightvae=True)``
sets ``pruning_rate = 0.75`` and builds the Wan2.1 ``WanVAE_`` (``_video_vae``: ``dim 96``, ``z_dim 16``,
``dim_mult [1, 2, 4, 4]``, ``num_res_blocks 2``, no attention scales, ``temperal_downsample
[False, True, True]``) whose ``Encoder3d`` / ``Decoder3d`` scale every stage width alike,
``dims = [int(d * (1 - pruning_rate)) for d in dims]``: the same modules and key names as ``Wan2.1_VAE.pth``
(loaded strictly), only narrower. Latent statistics and the decode arithmetic (``z / (1 / std) + mean``) are
the Wan2.1 VAE's, so LightVAE decodes the pipeline's normalised latents exactly as the Wan VAE does.

Why diffusers expresses it: ``AutoencoderKLWan`` computes its widths as ``base_dim · dim_mult``
(encoder) and ``decoder_base_dim · ([dim_mult[-1]] + dim_mult[::-1])`` (decoder; ``decoder_base_dim``
defaults to ``base_dim``), and ``int(96 · 0.25 · m) = 24 · m`` for every multiplier, so ``lightvaew2_1`` is
``AutoencoderKLWan(base_dim=24)`` (encoder 24/48/96/96, decoder 96/96/48/24, the upsamplers' ``dim // 2``
convolutions included). diffusers' ``convert_wan_vae_to_diffusers`` (``diffusers.loaders.single_file_utils``)
only renames keys and knows the Wan2.1 block layout (two residual blocks per encoder stage, three plus an
upsampler per decoder stage), which pruning keeps. :func:`load_lightvae` reads the widths from the file's
shapes, so another uniform pruning rate loads as well.

Not covered: the later ``lightx2v/LightVAE`` "Pro" (temporal low-rank) and "Lite" (block-pruned) Wan decoders
change the block structure, which ``AutoencoderKLWan`` cannot express.
"""

from __future__ import annotations

from pathlib import Path

import torch
from diffusers import AutoencoderKLWan

from ..errors import ModelError

__all__ = ["LIGHTVAE_BASE_DIM", "lightvae_config", "load_lightvae"]

#: ``int(96 · (1 - 0.75))``: lightx2v ``WanVAE(use_lightvae=True)`` prunes the Wan2.1 VAE (dim 96) by 0.75.
LIGHTVAE_BASE_DIM = 24

# (encoder key whose axis 0 is base_dim, decoder key whose axis 1 is the decoder's base width): in the
# original Wan layout, then in diffusers' (the converter passes diffusers keys through unchanged).
_WIDTH_KEYS = (
    (
        "encoder.conv1.weight",
        "decoder.head.2.weight",
    ),  # original: conv1 [base, 3, ...], head.2 [3, dec_base, ...]
    ("encoder.conv_in.weight", "decoder.conv_out.weight"),  # diffusers
)


def lightvae_config(base_dim: int = LIGHTVAE_BASE_DIM, decoder_base_dim: int | None = None) -> dict:
    """``AutoencoderKLWan(**cfg)`` keyword arguments of a uniformly pruned Wan2.1 VAE: diffusers' Wan2.1
    defaults (z_dim 16, dim_mult [1, 2, 4, 4], 2 residual blocks, Wan2.1 latents_mean/std) with ``base_dim``
    (and ``decoder_base_dim`` when it differs). Defaults: ``lightvaew2_1``."""
    cfg: dict = {"base_dim": int(base_dim)}
    if decoder_base_dim is not None and decoder_base_dim != base_dim:
        cfg["decoder_base_dim"] = int(decoder_base_dim)
    return cfg


def load_lightvae(
    path: str | Path,
    *,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> AutoencoderKLWan:
    """Load ``lightvaew2_1.pth`` (or its ``.safetensors`` form, or any uniformly channel-pruned Wan2.1 VAE
    file in the original ``WanVAE_`` key layout) as a diffusers ``AutoencoderKLWan``.

    The widths are read from the file (``encoder.conv1.weight`` axis 0 = ``base_dim``,
    ``decoder.head.2.weight`` axis 1 = the decoder's), the keys converted by diffusers'
    ``convert_wan_vae_to_diffusers`` and loaded strictly through :func:`longlive_cli.models.vae.load_vae`
    (``torch.load(weights_only=True)``, memory-mapped, for ``.pth``).

    Args:
        path: the LightVAE file.
        device: where to put the model (None: CPU).
        dtype: parameter dtype (float32 default, as LongLive decodes).

    Returns:
        ``AutoencoderKLWan`` in eval mode, gradients off; decode it with
        :class:`~longlive_cli.decoders.wan.StreamingDecoder`.

    Raises:
        ModelError: the file is missing, unreadable or unsafe, or its keys or shapes do not fit the pruned
            Wan2.1 VAE; the message names the file and the mismatched keys (first one first, natural order).
    """
    from ..models.vae import load_vae
    from ..models.weights import CheckpointError, load_flat_state_dict

    path = Path(path)
    if not path.is_file():
        raise ModelError(f"LightVAE file {path}: no such file")
    try:
        sd = load_flat_state_dict(path, "LightVAE file", hint="pass lightvaew2_1.pth (a flat state dict)")
    except CheckpointError as e:
        raise ModelError(str(e)) from e
    for enc_key, dec_key in _WIDTH_KEYS:
        enc, dec = sd.get(enc_key), sd.get(dec_key)
        if enc is not None and dec is not None and enc.ndim == 5 and dec.ndim == 5:
            config = lightvae_config(int(enc.shape[0]), int(dec.shape[1]))
            break
    else:
        raise ModelError(
            f"{path}: not a Wan2.1-layout VAE file: missing {_WIDTH_KEYS[0][0]} or {_WIDTH_KEYS[0][1]} (5-D "
            "causal-conv weights that give the widths). Pass lightvaew2_1.pth."
        )
    del sd
    try:
        return load_vae(path, config=config, torch_dtype=dtype, device=device)
    except ValueError as e:  # load_vae's key/shape errors; CheckpointError is a ValueError too
        raise ModelError(f"{e} (LightVAE widths read from the file: {config})") from e


def load_network(path: str | Path | None) -> AutoencoderKLWan:
    """The registry's loader for ``lightvae``: :func:`load_lightvae` of ``path``, or for ``path`` None a tiny
    random Wan-layout VAE (the same family as the Wan VAE; seed 1, so its weights differ from the
    ``tiny-random`` model's own VAE)."""
    if path is not None:
        return load_lightvae(path)
    from ..models.vae import tiny_vae_config

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(1)
        return AutoencoderKLWan(**tiny_vae_config())
