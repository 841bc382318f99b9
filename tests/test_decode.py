"""Streaming VAE decode against diffusers' own one-shot ``AutoencoderKLWan.decode``.

Equality level: exact (bit-identical uint8). The streaming decoder runs the same decoder modules on the
same single-latent-frame inputs with the same feature-cache contents as ``AutoencoderKLWan._decode``, and
de-normalizes with the same float32 arithmetic as diffusers' Wan pipeline (``z / (1 / std) + mean``), so
nothing is computed differently. The algebraically equal ``z * std + mean`` differs from that by float32
rounding (~1e-6), which can flip a rounded uint8 by 1: that comparison is allowed 1 LSB.
"""

from __future__ import annotations

import logging

import pytest
import torch
from diffusers import AutoencoderKLWan

from longlive_cli.decoders.wan import StreamingDecoder, decode_latents
from longlive_cli.errors import GenerationError
from longlive_cli.models.vae import tiny_vae_config
from longlive_cli.runtime import RuntimeOptions

F, H, W = 9, 4, 6  # latent frames, latent height, latent width
BLOCK = 3


def _make_vae(**overrides) -> AutoencoderKLWan:
    torch.manual_seed(0)
    return AutoencoderKLWan(**{**tiny_vae_config(), **overrides}).eval()


def _stats(vae: AutoencoderKLWan) -> tuple[torch.Tensor, torch.Tensor]:
    mean = torch.tensor(vae.config.latents_mean, dtype=torch.float32).view(1, -1, 1, 1, 1)
    std = torch.tensor(vae.config.latents_std, dtype=torch.float32).view(1, -1, 1, 1, 1)
    return mean, std


def _diffusers_decode(vae: AutoencoderKLWan, vae_input: torch.Tensor) -> torch.Tensor:
    """diffusers' one-shot decode of a de-normalized [B, C, F, h, w] input → uint8 [B, T, H, W, 3]."""
    with torch.no_grad():
        video = vae.decode(vae_input).sample  # [B, 3, T, H, W], clamped to [-1, 1] by diffusers
    return ((video.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 4, 1)


@pytest.fixture(scope="module")
def vae() -> AutoencoderKLWan:
    return _make_vae()


@pytest.fixture(scope="module")
def latents() -> torch.Tensor:
    g = torch.Generator().manual_seed(1)
    return torch.randn(2, F, 16, H, W, generator=g)  # [B, F, C, h, w]


@pytest.fixture(scope="module")
def whole(vae, latents) -> torch.Tensor:
    return decode_latents(vae, latents)


def _stream(decoder: StreamingDecoder, latents: torch.Tensor, block: int = BLOCK) -> list[torch.Tensor]:
    return [decoder.decode(latents[:, i : i + block]) for i in range(0, latents.shape[1], block)]


def test_decode_latents_shape_and_dtype(whole):
    assert whole.shape == (2, 4 * F - 3, 8 * H, 8 * W, 3)
    assert whole.dtype == torch.uint8 and whole.device.type == "cpu"
    # Random weights still give a spread of values: the equality tests below are not trivially about 0/255.
    assert whole.float().std() > 20


def test_blocks_equal_whole_and_diffusers_decode(vae, latents, whole):
    dec = StreamingDecoder(vae)
    blocks = _stream(dec, latents)
    assert [b.shape[1] for b in blocks] == [4 * BLOCK - 3, 4 * BLOCK, 4 * BLOCK]  # 4F - 3, then 4F
    assert dec.latent_frames_decoded == F and dec.video_frames_decoded == 4 * F - 3
    assert torch.equal(torch.cat(blocks, dim=1), whole)

    mean, std = _stats(vae)
    z = latents.permute(0, 2, 1, 3, 4)  # [B, C, F, h, w]
    # Exactly diffusers' WanPipeline arithmetic → exact equality.
    assert torch.equal(_diffusers_decode(vae, z / (1.0 / std) + mean), whole)
    # The algebraic form of the brief: same up to float32 rounding → at most 1 LSB.
    manual = _diffusers_decode(vae, z * std + mean)
    assert (manual.int() - whole.int()).abs().max() <= 1


def test_uneven_blocks_equal_prefix_of_whole(vae, latents, whole):
    # The decoder is causal, so the first 5 latent frames decode to the first 17 frames of the whole video.
    dec = StreamingDecoder(vae)
    parts = [dec.decode(latents[:, :1]), dec.decode(latents[:, 1:5])]
    assert [p.shape[1] for p in parts] == [1, 16]
    assert torch.equal(torch.cat(parts, dim=1), whole[:, :17])


def test_reset_starts_new_video(vae, latents):
    dec = StreamingDecoder(vae)
    dec.decode(latents[:, :3])
    carried = dec.decode(latents[:, 3:6])
    assert carried.shape[1] == 4 * BLOCK  # without reset the cache carries over
    dec.reset()
    assert dec.latent_frames_decoded == 0
    first = dec.decode(latents[:, 3:6])
    assert first.shape[1] == 4 * BLOCK - 3
    assert torch.equal(first, StreamingDecoder(vae).decode(latents[:, 3:6]))


def test_stream_is_independent_of_other_vae_use(vae, latents, whole):
    dec = StreamingDecoder(vae)
    a = dec.decode(latents[:, :3])
    with torch.no_grad():
        vae.decode(torch.randn(2, 16, 2, H, W))  # clears and reuses the vae's own cache
    vae.clear_cache()
    b = dec.decode(latents[:, 3:5])
    assert torch.equal(torch.cat([a, b], dim=1), whole[:, :17])


def test_normalization_is_applied(latents):
    lat = latents[:1, :3]
    z = lat.permute(0, 2, 1, 3, 4)

    # Identity statistics: streaming decode is exactly diffusers' raw decode.
    plain = _make_vae(latents_mean=[0.0] * 16, latents_std=[1.0] * 16)
    assert torch.equal(decode_latents(plain, lat), _diffusers_decode(plain, z))

    # Non-trivial statistics (same weights): differs from the raw decode, matches z·std + mean.
    shifted_mean = [0.5 * (i % 5) - 1.0 for i in range(16)]
    scaled_std = [0.5 + 0.25 * (i % 7) for i in range(16)]
    vae = _make_vae(latents_mean=shifted_mean, latents_std=scaled_std)
    got = decode_latents(vae, lat)
    raw = _diffusers_decode(vae, z)
    assert (got != raw).float().mean() > 0.5
    mean, std = _stats(vae)
    assert (got.int() - _diffusers_decode(vae, z * std + mean).int()).abs().max() <= 1
    assert torch.equal(got, _diffusers_decode(vae, z / (1.0 / std) + mean))


def test_input_dtype_and_layout_are_handled(vae, latents, whole):
    # float64 and a non-contiguous view decode to the same frames as the float32 original.
    lat64 = latents[:, :3].double().permute(1, 0, 2, 3, 4).contiguous().permute(1, 0, 2, 3, 4)
    assert torch.equal(decode_latents(vae, lat64), whole[:, :9])


@pytest.mark.parametrize(
    "shape",
    [(2, 3, 16, H), (2, 3, 8, H, W), (2, 0, 16, H, W)],
    ids=["4d", "wrong-channels", "no-frames"],
)
def test_bad_latent_shapes(vae, shape):
    with pytest.raises(ValueError, match=r"latents|frames|channels"):
        StreamingDecoder(vae).decode(torch.zeros(shape))


def test_shape_change_mid_video_is_refused(vae, latents):
    dec = StreamingDecoder(vae)
    dec.decode(latents[:, :3])
    with pytest.raises(ValueError, match="reset"):
        dec.decode(latents[:1, 3:6])
    dec.reset()
    assert dec.decode(latents[:1, 3:6]).shape[1] == 4 * BLOCK - 3


# --------------------------------------------------------------------------- compile_decoder


def test_compiled_decoder_equals_eager_with_one_graph_per_resolution(latents, whole):
    from torch._dynamo.testing import CompileCounterWithBackend

    vae = _make_vae()  # its own: the compiled call is kept per VAE
    counter = CompileCounterWithBackend("aot_eager")
    options = RuntimeOptions(compile_decoder=True, compile_backend=counter)
    for _ in range(2):  # a second video reuses the graph
        decoder = StreamingDecoder(vae, options=options)
        streamed = torch.cat(_stream(decoder, latents), dim=1)
        assert torch.equal(streamed, whole)
    # Frames 0 and 1 run eagerly (the feature cache is still growing); frames 2..8 of both videos: one graph.
    assert counter.frame_count == 1 and decoder.fallbacks == []
    smaller = StreamingDecoder(vae, options=options).decode(latents[:, :, :, :2, :4])
    assert smaller.shape == (2, 4 * F - 3, 16, 32, 3) and counter.frame_count == 2


def test_failed_decoder_compile_falls_back_once_with_a_warning(latents, whole, caplog):
    vae = _make_vae()
    calls = []

    def broken_backend(gm, example_inputs):
        calls.append(1)
        raise RuntimeError("no compiler (simulated)")

    options = RuntimeOptions(compile_decoder=True, compile_backend=broken_backend)
    fallbacks: list[str] = []
    with caplog.at_level(logging.WARNING, logger="longlive_cli"):
        for _ in range(2):
            decoder = StreamingDecoder(vae, options=options, fallbacks=fallbacks)
            assert torch.equal(torch.cat(_stream(decoder, latents), dim=1), whole)
    assert len(calls) == 1 and len(fallbacks) == 1  # not retried for the second video
    assert fallbacks[0].startswith("compile-decoder: ") and "no compiler (simulated)" in fallbacks[0]
    assert "compile-decoder failed" in caplog.text and "decoding eagerly" in caplog.text

    strict = RuntimeOptions(compile_decoder=True, compile_backend=broken_backend, strict=True)
    with pytest.raises(GenerationError, match="compile-decoder failed and --strict-speed"):
        _stream(StreamingDecoder(_make_vae(), options=strict), latents)
