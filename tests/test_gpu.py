"""Checks that need a CUDA GPU (marked ``gpu``; skipped without one, see conftest.py).

Tolerances: bf16 carries 8 bits of mantissa, so one pass differs from float32 by ~1e-2 relative; the speed
options are compared with the plain path in bf16 on the same GPU, where only the order of float operations
differs: 2e-2 relative over a few blocks is the stated bound.
"""

from __future__ import annotations

import copy

import pytest
import torch
from helpers import rel_err

from longlive_cli.models.loaders import build_tiny_random
from longlive_cli.models.transformer import CausalWanTransformer
from longlive_cli.runtime import RuntimeOptions
from longlive_cli.samplers.longlive import sample_video

pytestmark = pytest.mark.gpu

SEGMENTS = [0] * 5 + [1] * 3
BF16_TOLERANCE = 2e-2


@pytest.fixture(scope="module")
def wan():
    torch.manual_seed(0)
    return build_tiny_random()[0]


@pytest.fixture(scope="module")
def embeds(wan):
    g = torch.Generator().manual_seed(1)
    return [torch.randn(1, 64, wan.config.text_dim, generator=g) for _ in range(2)]


def latents(wan, embeds, options: RuntimeOptions, dtype=torch.bfloat16) -> torch.Tensor:
    model = CausalWanTransformer(copy.deepcopy(wan).to("cuda", dtype)).configure(options)
    blocks = sample_video(model, embeds, SEGMENTS, latent_height=10, latent_width=16, seed=3)
    return torch.cat([b.latents.float() for b in blocks], dim=1)


def test_the_block_loop_never_waits_for_the_gpu(wan, embeds):
    model = CausalWanTransformer(copy.deepcopy(wan).to("cuda", torch.bfloat16)).configure(
        RuntimeOptions.for_device("cuda", compile=False)
    )
    torch.cuda.set_sync_debug_mode("error")
    try:
        blocks = list(sample_video(model, embeds, SEGMENTS, latent_height=10, latent_width=16, seed=3))
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert len(blocks) == len(SEGMENTS)


@pytest.mark.parametrize(
    "switches",
    [
        {"fused_qkv": True},
        {"rope_cache": True},
        {"static_cache": True},
        {"static_cache": True, "compile": True},
        {"attention": "sdpa-flash", "static_cache": True},
        {"attention": "sdpa-cudnn", "static_cache": True},
        {"attention": "sdpa-efficient", "static_cache": True},
        {"attention": "flash-attn-3", "static_cache": True},
    ],
    ids=[
        "fused-qkv", "rope-cache", "static-cache", "compile", "sdpa-flash", "sdpa-cudnn", "sdpa-efficient",
        "flash-attn-3",
    ],
)  # fmt: skip
def test_each_option_matches_the_plain_path_in_bf16(wan, embeds, switches):
    import importlib.util

    fa3 = switches.get("attention") == "flash-attn-3"
    if fa3 and importlib.util.find_spec("flash_attn_interface") is None:
        pytest.skip("FlashAttention-3 (flash_attn_interface) is not installed")
    torch._dynamo.reset()
    options = RuntimeOptions(strict=True, **switches)  # a backend that falls back would compare nothing
    assert rel_err(latents(wan, embeds, options), latents(wan, embeds, RuntimeOptions())) < BF16_TOLERANCE


def test_compiled_decoder_matches_eager_in_bf16():
    from longlive_cli.decoders.wan import StreamingDecoder

    vae = build_tiny_random()[1].to("cuda", torch.bfloat16)
    z = torch.randn(1, 9, 16, 6, 10, generator=torch.Generator().manual_seed(2))
    videos = []
    for options in (RuntimeOptions(), RuntimeOptions(compile_decoder=True, strict=True)):
        decoder = StreamingDecoder(vae, options=options)
        videos.append(torch.cat([decoder.decode(z[:, i : i + 3]) for i in range(0, 9, 3)], dim=1))
    steps = (videos[0].int() - videos[1].int()).abs().max().item()
    assert videos[0].shape == videos[1].shape and steps <= BF16_TOLERANCE * 255


def test_bf16_conv3d_agrees_with_float32():
    """cuDNN 9.8-9.10 were reported to give wrong bf16 Conv3d results; the VAE is made of them."""
    torch.manual_seed(0)
    conv = torch.nn.Conv3d(96, 96, 3, padding=1).cuda()
    x = torch.randn(1, 96, 4, 60, 104, device="cuda")
    ref = conv(x)
    got = conv.to(torch.bfloat16)(x.to(torch.bfloat16)).float()
    assert rel_err(got, ref) < 2e-2


@pytest.mark.parametrize("scheme", ["w8a8", "w8", "fp8"])
def test_int8_and_fp8_run(wan, embeds, scheme):
    from longlive_cli.models.int8 import check_scheme, quantize_transformer

    if scheme == "fp8" and torch.cuda.get_device_capability() < (8, 9):
        pytest.skip("fp8 needs compute capability >= 8.9")
    check_scheme(scheme, "cuda")
    quantized = copy.deepcopy(wan).to("cuda", torch.bfloat16)
    quantize_transformer(quantized, scheme)
    model = CausalWanTransformer(quantized)
    blocks = list(sample_video(model, embeds, SEGMENTS, latent_height=10, latent_width=16, seed=3))
    out = torch.cat([b.latents.float() for b in blocks], dim=1)
    assert torch.isfinite(out).all() and rel_err(out, latents(wan, embeds, RuntimeOptions())) < 0.2


def test_overlapped_decode_writes_the_same_video_on_cuda(tmp_path):
    from longlive_cli import LongLive
    from longlive_cli.runtime import RuntimeOptions as Options

    story = "duration: 3s\nresolution: 64x48\nprompts:\n  - {at: 0s, text: a}\n  - {at: 1.5s, text: b}\n"
    outs = []
    for overlap in (False, True):
        ll = LongLive.from_pretrained("tiny-random", device="cuda", options=Options(overlap_decode=overlap))
        outs.append(tmp_path / f"{overlap}.mp4")
        ll.generate(story, outs[-1], seed=1)
    assert outs[0].read_bytes() == outs[1].read_bytes()
