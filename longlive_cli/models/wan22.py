"""Wan2.2-TI2V-5B, the backbone of LongLive 2.0: its transformer and VAE configurations, the VAE's latent
statistics, and the tiny random stand-ins of the ``tiny-random-2`` preset.

The causal 5B is the Wan2.1 block design at another size (NVlabs/LongLive ``main`` 7860ad9
``wan_5b/modules/causal_model.py:962-1098``, ``wan_5b/configs/wan_ti2v_5B.py``): dim 3072 (24 heads x 128), 30
layers, FFN 14336, text_dim 4096, freq_dim 256, patch (1, 2, 2), 48 latent channels, so diffusers'
``WanTransformer3DModel`` holds it and :class:`~longlive_cli.models.transformer.CausalWanTransformer` runs it
as it
runs the 1.3B. The VAE is the Wan2.2 VAE (``wan_5b/modules/vae2_2.py``: z_dim 48, 16x spatial = a 2x2 pixel
patch + 8x, 4x temporal, residual down/up-sampling), which diffusers' ``AutoencoderKLWan`` builds with
``is_residual=True, patch_size=2, in_channels=out_channels=12`` (``Wan-AI/Wan2.2-TI2V-5B-Diffusers``
``vae/config.json``). Latents are normalized per channel as ``(mu - mean) / std`` with the 48 constants of
``utils/wan_5b_wrapper.py:61-162`` (:data:`WAN22_LATENT_MEAN`, :data:`WAN22_LATENT_STD`).
"""

from __future__ import annotations

import torch

__all__ = [
    "WAN22_LATENT_MEAN",
    "WAN22_LATENT_STD",
    "build_tiny_random_2",
    "tiny_transformer_config_2",
    "tiny_vae_config_2",
    "wan22_5b_transformer_config",
    "wan22_vae_config",
]

# Wan2.2 VAE latent statistics (NVlabs/LongLive main utils/wan_5b_wrapper.py:61-162, as in Wan2.2's
# vae2_2.py).
WAN22_LATENT_MEAN = (
    -0.2289, -0.0052, -0.1323, -0.2339, -0.2799, 0.0174, 0.1838, 0.1557,
    -0.1382, 0.0542, 0.2813, 0.0891, 0.1570, -0.0098, 0.0375, -0.1825,
    -0.2246, -0.1207, -0.0698, 0.5109, 0.2665, -0.2108, -0.2158, 0.2502,
    -0.2055, -0.0322, 0.1109, 0.1567, -0.0729, 0.0899, -0.2799, -0.1230,
    -0.0313, -0.1649, 0.0117, 0.0723, -0.2839, -0.2083, -0.0520, 0.3748,
    0.0152, 0.1957, 0.1433, -0.2944, 0.3573, -0.0548, -0.1681, -0.0667,
)  # fmt: skip
WAN22_LATENT_STD = (
    0.4765, 1.0364, 0.4514, 1.1677, 0.5313, 0.4990, 0.4818, 0.5013,
    0.8158, 1.0344, 0.5894, 1.0901, 0.6885, 0.6165, 0.8454, 0.4978,
    0.5759, 0.3523, 0.7135, 0.6804, 0.5833, 1.4146, 0.8986, 0.5659,
    0.7069, 0.5338, 0.4889, 0.4917, 0.4069, 0.4999, 0.6866, 0.4093,
    0.5709, 0.6065, 0.6415, 0.4944, 0.5726, 1.2042, 0.5458, 1.6887,
    0.3971, 1.0600, 0.3943, 0.5537, 0.5444, 0.4089, 0.7468, 0.7744,
)  # fmt: skip


def wan22_5b_transformer_config() -> dict:
    """``WanTransformer3DModel`` kwargs of Wan2.2-TI2V-5B (``wan_5b/configs/wan_ti2v_5B.py``; the diffusers
    repo's ``transformer/config.json``): 30 layers, 24 heads of 128 channels, FFN 14336, 48 latent
    channels."""
    return dict(
        patch_size=(1, 2, 2),
        num_attention_heads=24,
        attention_head_dim=128,
        in_channels=48,
        out_channels=48,
        text_dim=4096,
        freq_dim=256,
        ffn_dim=14336,
        num_layers=30,
        cross_attn_norm=True,
        qk_norm="rms_norm_across_heads",
        eps=1e-6,
        rope_max_seq_len=1024,
    )


def tiny_transformer_config_2() -> dict:
    """The ``tiny-random-2`` transformer: Wan2.2-TI2V-5B's layout (48 latent channels) at toy size (2 layers,
    2 heads of 12 channels, text_dim 32 = the tiny UMT5's d_model)."""
    toy = {"num_attention_heads": 2, "attention_head_dim": 12, "text_dim": 32, "freq_dim": 16, "ffn_dim": 48}
    return {**wan22_5b_transformer_config(), **toy, "num_layers": 2}


def wan22_vae_config() -> dict:
    """``AutoencoderKLWan`` kwargs of the Wan2.2 VAE (``Wan-AI/Wan2.2-TI2V-5B-Diffusers``
    ``vae/config.json``)."""
    return dict(
        base_dim=160,
        decoder_base_dim=256,
        z_dim=48,
        dim_mult=[1, 2, 4, 4],
        num_res_blocks=2,
        attn_scales=[],
        temperal_downsample=[False, True, True],
        dropout=0.0,
        is_residual=True,
        in_channels=12,
        out_channels=12,
        patch_size=2,
        scale_factor_spatial=16,
        scale_factor_temporal=4,
        latents_mean=list(WAN22_LATENT_MEAN),
        latents_std=list(WAN22_LATENT_STD),
    )


def tiny_vae_config_2() -> dict:
    """The ``tiny-random-2`` VAE: the Wan2.2 VAE's structure (z_dim 48, 2x2 pixel patch, residual sampling,
    16x spatial and 4x temporal compression, the real latent statistics) with 4 channels per stage and no
    residual blocks, so that it decodes fast on a CPU."""
    return {
        **wan22_vae_config(),
        "base_dim": 4,
        "decoder_base_dim": 4,
        "dim_mult": [1, 1, 1, 1],
        "num_res_blocks": 0,
    }


def build_tiny_random_2(seed: int = 0):
    """Tiny random 2.0-shaped transformer and VAE (``WanTransformer3DModel``, ``AutoencoderKLWan``), identical
    for the same ``seed``."""
    from diffusers import AutoencoderKLWan, WanTransformer3DModel

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        wan = WanTransformer3DModel(**tiny_transformer_config_2())
        vae = AutoencoderKLWan(**tiny_vae_config_2())
    return wan, vae
