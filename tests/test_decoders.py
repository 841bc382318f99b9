"""Fast decoders: TAEHV / LightTAE (``longlive_cli.decoders.taehv``) and LightVAE (``.lightvae``).

Every model is tiny and random and every file is written here in its official key layout: TAEHV's
``decoder.<i>.…`` / ``encoder.<i>.…`` (madebyollin/taehv ``taehv.py``), LightVAE's original ``WanVAE_`` layout
generated from lightx2v ``wan/modules/vae.py`` (``Encoder3d`` / ``Decoder3d`` with ``pruning_rate``), not from
diffusers' names. Equality levels: streaming against one call is exact (same per-latent-frame computation);
against the time-parallel reference (official ``apply_model_with_memblocks_parallel`` semantics, written here
independently, other batch sizes) at most 1 uint8 step.
"""

from __future__ import annotations

import hashlib
import itertools
import math

import pytest
import torch
import torch.nn.functional as F
from diffusers import AutoencoderKLWan
from safetensors.torch import save_file

from longlive_cli.decoders.lightvae import LIGHTVAE_BASE_DIM, lightvae_config, load_lightvae
from longlive_cli.decoders.taehv import (
    TINY_TAEHV_WIDTHS,
    MemBlock,
    StreamingTAEHVDecoder,
    TAEHVDecoder,
    TGrow,
    load_taehv,
    taehv_state_dict,
    tiny_taehv,
)
from longlive_cli.decoders.wan import StreamingDecoder
from longlive_cli.errors import ModelError

H, W = 4, 6  # latent height, width


def _wan21_stats() -> tuple[torch.Tensor, torch.Tensor]:
    """diffusers' default Wan2.1 latents_mean / latents_std as [1, 1, 16, 1, 1] (read from the signature, so
    no real-size VAE is built)."""
    import inspect

    params = inspect.signature(AutoencoderKLWan.__init__).parameters
    mean = torch.tensor(params["latents_mean"].default).view(1, 1, -1, 1, 1)
    std = torch.tensor(params["latents_std"].default).view(1, 1, -1, 1, 1)
    return mean, std


def _latents(frames: int, seed: int = 1, batch: int = 1) -> torch.Tensor:
    return torch.randn(batch, frames, 16, H, W, generator=torch.Generator().manual_seed(seed))


def _stream(decoder, latents: torch.Tensor, sizes) -> list[torch.Tensor]:
    out, start = [], 0
    for n in sizes:
        out.append(decoder.decode(latents[:, start : start + n]))
        start += n
    assert start == latents.shape[1]
    return out


def _save(sd: dict[str, torch.Tensor], path) -> None:
    if str(path).endswith(".safetensors"):
        save_file({k: v.contiguous() for k, v in sd.items()}, str(path))
    else:
        torch.save(sd, path)


# ---------------------------------------------------------------------- TAEHV: reference semantics
def _reference_decode(model: TAEHVDecoder, z: torch.Tensor) -> torch.Tensor:
    """The official parallel evaluation, written from ``taehv.py`` independently of the streaming code
    (only the layers' convolutions are shared): all time steps at once, batch-major ``[N·T, C, H, W]``; a
    MemBlock is ``ReLU(conv(cat[x_t, x_{t-1}]) + x_t)`` with ``x_{t-1}`` its input shifted by one step, a
    zero frame first; a TGrow's stride·C channels become stride consecutive steps; clamp to [0, 1]; drop
    the first 3 frames. ``z``: decoder input ``[N, T, 16, h, w]`` → uint8 ``[N, 4T - 3, 8h, 8w, 3]``."""
    n, t = z.shape[:2]
    x = z.reshape(n * t, *z.shape[2:])
    for layer in model.decoder:
        if isinstance(layer, MemBlock):
            steps = x.shape[0] // n
            seq = x.reshape(n, steps, *x.shape[1:])
            past = F.pad(seq, (0, 0, 0, 0, 0, 0, 1, 0))[:, :steps].reshape(x.shape)
            x = F.relu(layer.conv(torch.cat([x, past], dim=1)) + x)  # current step first, then the past
        elif isinstance(layer, TGrow):
            c = x.shape[1]
            x = layer.conv(x).reshape(-1, c, *x.shape[2:])
        else:
            x = layer(x)
    video = x.reshape(n, -1, *x.shape[1:]).clamp(0, 1)[:, 3:]
    return (video * 255).round().to(torch.uint8).permute(0, 1, 3, 4, 2)


@pytest.fixture(scope="module")
def tiny() -> TAEHVDecoder:
    return tiny_taehv(seed=3)


def test_tiny_frames_are_not_flat(tiny):
    out = StreamingTAEHVDecoder(tiny).decode(_latents(4)).float()
    assert out.std() > 20  # the equality tests below compare real images, not all-0/255 frames
    assert ((out == 0) | (out == 255)).float().mean() < 0.2


@pytest.mark.parametrize("variant", ["taehv", "lighttae"])
@pytest.mark.parametrize("sizes", [[3, 3, 3], [1, 2, 4, 2], [9]])
def test_blocks_equal_one_shot_bit_for_bit(variant, sizes):
    model = tiny_taehv(seed=3, variant=variant)
    latents = _latents(9, batch=2)
    whole = StreamingTAEHVDecoder(model).decode(latents)
    dec = StreamingTAEHVDecoder(model)
    blocks = _stream(dec, latents, sizes)
    assert [b.shape[1] for b in blocks] == [4 * sizes[0] - 3] + [4 * s for s in sizes[1:]]
    assert torch.equal(torch.cat(blocks, dim=1), whole)
    assert whole.dtype == torch.uint8
    assert whole.device.type == "cpu"
    assert whole.is_contiguous()
    assert whole.shape == (2, 4 * 9 - 3, 8 * H, 8 * W, 3)


@pytest.mark.parametrize("latent_frames", [1, 2, 3, 4, 5, 7])
def test_frame_count_is_4L_minus_3(tiny, latent_frames):
    dec = StreamingTAEHVDecoder(tiny)
    latents = _latents(latent_frames)
    sizes = [min(3, latent_frames - s) for s in range(0, latent_frames, 3)]
    total = sum(b.shape[1] for b in _stream(dec, latents, sizes))
    assert total == 4 * latent_frames - 3 == dec.video_frames_decoded
    assert dec.latent_frames_decoded == latent_frames


def test_streaming_matches_time_parallel_reference(tiny):
    latents = _latents(7, batch=2)
    got = torch.cat(_stream(StreamingTAEHVDecoder(tiny), latents, [3, 3, 1]), dim=1)
    with torch.no_grad():
        want = _reference_decode(tiny, latents)
    assert got.shape == want.shape
    assert (got.int() - want.int()).abs().max() <= 1
    # The carried memory matters: forgetting it between blocks changes the later frames.
    forgetful = StreamingTAEHVDecoder(tiny)
    forgetful.decode(latents[:, :3])
    forgetful._memory = tiny.new_memory()
    tail = forgetful.decode(latents[:, 3:])
    assert (tail.int() - want[:, 9:].int()).abs().float().mean() > 1


def test_lighttae_decodes_denormalised_latents_taehv_normalised_ones():
    taehv, light = tiny_taehv(seed=5, variant="taehv"), tiny_taehv(seed=5, variant="lighttae")
    latents = _latents(5)
    mean, std = _wan21_stats()
    denormalised = latents / (1.0 / std) + mean
    out_light = StreamingTAEHVDecoder(light).decode(latents)
    assert torch.equal(out_light, StreamingTAEHVDecoder(taehv).decode(denormalised))
    out_taehv = StreamingTAEHVDecoder(taehv).decode(latents)
    with torch.no_grad():
        assert torch.equal(out_taehv, _reference_decode(taehv, latents))
    assert (out_light.int() - out_taehv.int()).abs().float().mean() > 5


def test_reset_and_input_checks(tiny):
    dec = StreamingTAEHVDecoder(tiny)
    first = dec.decode(_latents(3))
    with pytest.raises(ValueError, match="differs from this video"):
        dec.decode(torch.zeros(1, 3, 16, H + 1, W))
    with pytest.raises(ValueError, match="16 channels"):
        dec.decode(torch.zeros(1, 3, 8, H, W))
    with pytest.raises(ValueError, match="no frames"):
        dec.decode(torch.zeros(1, 0, 16, H, W))
    with pytest.raises(ValueError, match=r"\[B, F, C, h, w\]"):
        dec.decode(torch.zeros(3, 16, H, W))
    dec.reset()
    assert dec.latent_frames_decoded == dec.video_frames_decoded == 0
    assert torch.equal(dec.decode(_latents(3)), first)  # a new video: memory and trim start over
    dec.reset()
    assert dec.decode(torch.zeros(1, 2, 16, H + 1, W, dtype=torch.float16)).shape == (
        1,
        5,
        8 * H + 8,
        8 * W,
        3,
    )


# ---------------------------------------------------------------------- TAEHV: files
@pytest.mark.parametrize(
    ("name", "encoder_width"),
    [("taew2_1.pth", 4), ("taew2_1.safetensors", 4), ("decoder_only.pth", None)],
)
def test_load_official_layout(tiny, tmp_path, name, encoder_width):
    path = tmp_path / name
    _save(taehv_state_dict(tiny, encoder_width=encoder_width), path)
    loaded = load_taehv(path, variant="taehv")
    assert loaded.widths == TINY_TAEHV_WIDTHS
    assert loaded.variant == "taehv"
    assert not any(p.requires_grad for p in loaded.parameters())
    for (k, a), (k2, b) in zip(loaded.state_dict().items(), tiny.state_dict().items(), strict=True):
        assert k == k2
        assert torch.equal(a, b)
    latents = _latents(4)
    assert torch.equal(
        StreamingTAEHVDecoder(loaded).decode(latents), StreamingTAEHVDecoder(tiny).decode(latents)
    )


def test_full_file_has_the_official_encoder_layout(tiny):
    sd = taehv_state_dict(tiny, encoder_width=64)
    encoder = {k: tuple(v.shape) for k, v in sd.items() if k.startswith("encoder.")}
    # taehv.py: conv(3, 64) + 3 x [TPool, strided conv, 3 MemBlocks] + conv(64, 16): 1,470,928 parameters.
    assert sum(math.prod(s) for s in encoder.values()) == 1_470_928
    assert encoder["encoder.2.conv.weight"] == (64, 128, 1, 1)  # TPool stride 2
    assert encoder["encoder.12.conv.weight"] == (64, 64, 1, 1)  # TPool stride 1
    assert encoder["encoder.17.weight"] == (16, 64, 3, 3)
    assert len(encoder) == 2 + 3 * (1 + 1 + 3 * 6) + 2


def test_real_size_decoder_parameters():
    with torch.device("meta"):
        model = TAEHVDecoder()
    assert model.widths == (256, 128, 64, 64)
    # 9,844,611 + the encoder's 1,470,928 = 11.3 M, 22.6 MB in float16 (taew2_1.pth is about 23 MB).
    assert sum(p.numel() for p in model.parameters()) == 9_844_611


def test_oversized_tgrow_weight_is_cut_to_its_last_rows(tiny, tmp_path):
    path = tmp_path / "lighttaew2_1.pth"
    sd = taehv_state_dict(tiny, first_tgrow_stride=2)  # the stride-2 shape lighttae ships at index 7
    assert sd["decoder.7.conv.weight"].shape[0] == 2 * TINY_TAEHV_WIDTHS[0]
    torch.save(sd, path)
    loaded = load_taehv(path, variant="lighttae")
    assert torch.equal(loaded.decoder[7].conv.weight, tiny.decoder[7].conv.weight)
    assert loaded.variant == "lighttae"


def _broken(tiny, kind: str) -> dict[str, torch.Tensor]:
    sd = taehv_state_dict(tiny, encoder_width=4)
    if kind == "missing":
        del sd["decoder.10.conv.2.weight"], sd["decoder.17.conv.4.bias"]
    elif kind == "shape":
        sd["decoder.14.weight"] = torch.zeros(4, 3, 3, 3)
    elif kind == "unexpected":
        sd["decoder.23.weight"] = torch.zeros(3)
        sd["head.weight"] = torch.zeros(3)
    elif kind == "latent_channels":  # a decoder for 48-channel latents (Wan2.2's taew2_2)
        sd["decoder.1.weight"] = torch.zeros(TINY_TAEHV_WIDTHS[0], 48, 3, 3)
    elif kind == "wan_vae":  # another model's file altogether
        sd = {"decoder.conv1.weight": torch.zeros(4, 16, 3, 3, 3), "decoder.conv1.bias": torch.zeros(4)}
    return sd


@pytest.mark.parametrize(
    ("kind", "first"),
    [
        ("missing", r"missing decoder\.10\.conv\.2\.weight \(and 1 more"),
        ("shape", r"decoder\.14\.weight has shape \(4, 3, 3, 3\), expected \(4, 8, 3, 3\)"),
        ("unexpected", r"unexpected decoder\.23\.weight \(and 1 more"),
        ("latent_channels", r"decoder\.1\.weight has shape \(8, 48, 3, 3\), expected \(8, 16, 3, 3\)"),
        ("wan_vae", r"missing decoder\.1\.bias"),
    ],
)
def test_wrong_layout_names_file_and_first_mismatched_key(tiny, tmp_path, kind, first):
    path = tmp_path / f"{kind}.pth"
    torch.save(_broken(tiny, kind), path)
    with pytest.raises(ModelError, match=rf"{kind}\.pth: not a TAEHV decoder.*: {first}") as info:
        load_taehv(path, variant="taehv")
    assert info.value.exit_code == 3


def test_unreadable_or_unsafe_file_is_a_model_error(tmp_path):
    garbage = tmp_path / "taew2_1.pth"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(ModelError, match=r"taew2_1\.pth"):
        load_taehv(garbage, variant="taehv")
    with pytest.raises(ModelError, match=r"nope\.pth: no such file"):
        load_taehv(tmp_path / "nope.pth", variant="taehv")
    nested = tmp_path / "nested.pth"
    torch.save({"state_dict": {"decoder.1.weight": torch.zeros(1)}}, nested)
    with pytest.raises(ModelError, match=r"nested\.pth.*flat state dict"):
        load_taehv(nested, variant="taehv")
    with pytest.raises(ValueError, match="variant"):
        load_taehv(garbage, variant="taew")  # type: ignore[arg-type]


def test_dtype_and_device_of_load(tiny, tmp_path):
    path = tmp_path / "taew2_1.safetensors"
    _save(taehv_state_dict(tiny), path)
    half = load_taehv(path, variant="taehv", dtype=torch.bfloat16, device="cpu")
    assert {p.dtype for p in half.parameters()} == {torch.bfloat16}
    latents = _latents(3).to(torch.float16)
    out = StreamingTAEHVDecoder(half).decode(latents)
    ref = StreamingTAEHVDecoder(tiny).decode(latents.float())
    assert out.shape == ref.shape
    assert (out.float() - ref.float()).abs().mean() < 4


# ---------------------------------------------------------------------- LightVAE
def _pruned_wan_vae_shapes(dim: int, pruning_rate: float, z_dim: int = 16) -> dict[str, tuple[int, ...]]:
    """Original ``WanVAE_`` key → shape of a Wan2.1-layout VAE with ``pruning_rate``, from lightx2v
    ``wan/vae.py`` (``_video_vae``: dim_mult [1, 2, 4, 4], 2 residual blocks, temperal_downsample
    [False, True, True]; ``dims = [int(d * (1 - pruning_rate)) for d in dims]`` in Encoder3d and
    Decoder3d)."""
    mult, nrb = [1, 2, 4, 4], 2
    out: dict[str, tuple[int, ...]] = {}

    def conv3d(name, c_out, c_in, k=(3, 3, 3)):
        out[f"{name}.weight"], out[f"{name}.bias"] = (c_out, c_in, *k), (c_out,)

    def resblock(name, c_in, c_out):  # residual = (RMS_norm, SiLU, conv, RMS_norm, SiLU, Dropout, conv)
        out[f"{name}.residual.0.gamma"] = (c_in, 1, 1, 1)
        conv3d(f"{name}.residual.2", c_out, c_in)
        out[f"{name}.residual.3.gamma"] = (c_out, 1, 1, 1)
        conv3d(f"{name}.residual.6", c_out, c_out)
        if c_in != c_out:
            conv3d(f"{name}.shortcut", c_out, c_in, (1, 1, 1))

    def middle(side, c):  # (ResidualBlock, AttentionBlock, ResidualBlock)
        resblock(f"{side}.middle.0", c, c)
        out[f"{side}.middle.1.norm.gamma"] = (c, 1, 1)
        out[f"{side}.middle.1.to_qkv.weight"], out[f"{side}.middle.1.to_qkv.bias"] = (
            (3 * c, c, 1, 1),
            (3 * c,),
        )
        out[f"{side}.middle.1.proj.weight"], out[f"{side}.middle.1.proj.bias"] = (c, c, 1, 1), (c,)
        resblock(f"{side}.middle.2", c, c)

    def head(side, c, c_out):
        out[f"{side}.head.0.gamma"] = (c, 1, 1, 1)
        conv3d(f"{side}.head.2", c_out, c)

    keep = 1 - pruning_rate
    dims = [int(dim * u * keep) for u in [1, *mult]]
    conv3d("encoder.conv1", dims[0], 3)
    i = 0
    for stage, (c_in, c_out) in enumerate(itertools.pairwise(dims)):
        for _ in range(nrb):
            resblock(f"encoder.downsamples.{i}", c_in, c_out)
            c_in, i = c_out, i + 1
        if stage != len(mult) - 1:
            out[f"encoder.downsamples.{i}.resample.1.weight"] = (c_out, c_out, 3, 3)
            out[f"encoder.downsamples.{i}.resample.1.bias"] = (c_out,)
            if [False, True, True][stage]:  # downsample3d
                conv3d(f"encoder.downsamples.{i}.time_conv", c_out, c_out, (3, 1, 1))
            i += 1
    middle("encoder", dims[-1])
    head("encoder", dims[-1], 2 * z_dim)
    conv3d("conv1", 2 * z_dim, 2 * z_dim, (1, 1, 1))
    conv3d("conv2", z_dim, z_dim, (1, 1, 1))

    dims = [int(dim * u * keep) for u in [mult[-1], *mult[::-1]]]
    conv3d("decoder.conv1", dims[0], z_dim)
    middle("decoder", dims[0])
    i = 0
    for stage, (c_in, c_out) in enumerate(itertools.pairwise(dims)):
        if stage in (1, 2, 3):
            c_in //= 2
        for _ in range(nrb + 1):
            resblock(f"decoder.upsamples.{i}", c_in, c_out)
            c_in, i = c_out, i + 1
        if stage != len(mult) - 1:
            out[f"decoder.upsamples.{i}.resample.1.weight"] = (c_out // 2, c_out, 3, 3)
            out[f"decoder.upsamples.{i}.resample.1.bias"] = (c_out // 2,)
            if [True, True, False][stage]:  # upsample3d (temperal_upsample = temperal_downsample[::-1])
                conv3d(f"decoder.upsamples.{i}.time_conv", 2 * c_out, c_out, (3, 1, 1))
            i += 1
    head("decoder", dims[-1], 3)
    return out


def _random_state_dict(shapes: dict[str, tuple[int, ...]], seed: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {
        k: torch.rand(s, generator=g) + 0.5 if k.endswith("gamma") else torch.randn(s, generator=g) * 0.15
        for k, s in shapes.items()
    }


def _digests(tensors) -> list[str]:
    return sorted(
        hashlib.sha256(t.detach().float().contiguous().numpy().tobytes()).hexdigest() for t in tensors
    )


def test_real_lightvae_layout_is_autoencoderklwan_base_dim_24():
    from diffusers.loaders.single_file_utils import convert_wan_vae_to_diffusers

    # lightvaew2_1: the Wan2.1 VAE (dim 96) pruned by 0.75; shapes only (meta tensors), nothing real built.
    original = {k: torch.empty(s, device="meta") for k, s in _pruned_wan_vae_shapes(96, 0.75).items()}
    converted = {k: tuple(v.shape) for k, v in convert_wan_vae_to_diffusers(original).items()}
    with torch.device("meta"):
        vae = AutoencoderKLWan(**lightvae_config())
    assert converted == {k: tuple(v.shape) for k, v in vae.state_dict().items()}
    assert LIGHTVAE_BASE_DIM == 24
    assert original["decoder.conv1.weight"].shape[0] == 96
    assert original["decoder.head.2.weight"].shape[1] == 24


@pytest.fixture(scope="module")
def lightvae_file(tmp_path_factory):
    """A tiny LightVAE file in the original layout: Wan2.1 layout at dim 16 pruned by 0.75 (base_dim 4)."""
    path = tmp_path_factory.mktemp("lightvae") / "lightvaew2_1.pth"
    sd = _random_state_dict(_pruned_wan_vae_shapes(16, 0.75), seed=7)
    torch.save(sd, path)
    return path, sd


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_lightvae_loads_pruned_original_layout(lightvae_file, tmp_path, suffix):
    path, sd = lightvae_file
    if suffix == ".safetensors":
        path = tmp_path / "lightvaew2_1.safetensors"
        save_file(sd, str(path))
    vae = load_lightvae(path)
    assert vae.config.base_dim == 4
    assert not any(p.requires_grad for p in vae.parameters())
    state = vae.state_dict()
    assert len(state) == len(sd)
    assert _digests(state.values()) == _digests(sd.values())
    assert torch.equal(state["decoder.conv_in.weight"], sd["decoder.conv1.weight"])
    assert torch.equal(
        state["decoder.up_blocks.3.resnets.2.conv2.weight"], sd["decoder.upsamples.14.residual.6.weight"]
    )
    assert torch.equal(state["post_quant_conv.bias"], sd["conv2.bias"])

    latents = _latents(4)
    dec = StreamingDecoder(vae)
    blocks = _stream(dec, latents, [3, 1])
    assert [b.shape[1] for b in blocks] == [9, 4]
    assert dec.video_frames_decoded == 4 * 4 - 3
    assert torch.equal(torch.cat(blocks, 1), StreamingDecoder(vae).decode(latents))


def test_lightvae_dtype(lightvae_file):
    path, _ = lightvae_file
    vae = load_lightvae(path, dtype=torch.bfloat16, device="cpu")
    assert vae.dtype == torch.bfloat16


def test_lightvae_wrong_layout_names_file_and_key(lightvae_file, tmp_path, tiny):
    _, sd = lightvae_file
    broken = tmp_path / "broken.pth"
    torch.save({k: v for k, v in sd.items() if k != "decoder.upsamples.3.resample.1.weight"}, broken)
    with pytest.raises(
        ModelError, match=r"broken\.pth.*missing decoder\.up_blocks\.0\.upsamplers\.0\.resample\.1\.weight"
    ):
        load_lightvae(broken)
    shapes = tmp_path / "shapes.pth"
    torch.save({**sd, "decoder.conv1.bias": torch.zeros(5)}, shapes)
    with pytest.raises(ModelError, match=r"shapes\.pth.*decoder\.conv_in\.bias \(5,\)"):
        load_lightvae(shapes)
    taehv = tmp_path / "taew2_1.pth"
    torch.save(taehv_state_dict(tiny), taehv)
    with pytest.raises(
        ModelError, match=r"taew2_1\.pth: not a Wan2\.1-layout VAE file: missing encoder\.conv1"
    ):
        load_lightvae(taehv)
    with pytest.raises(ModelError, match=r"none\.pth: no such file"):
        load_lightvae(tmp_path / "none.pth")


def test_file_name_of_the_other_variant_is_warned_about(tiny, tmp_path, caplog):
    light, plain = tmp_path / "lighttaew2_1.pth", tmp_path / "taew2_1.pth"
    for path in (light, plain):
        torch.save(taehv_state_dict(tiny), path)
    with caplog.at_level("WARNING", logger="longlive_cli.decoders.taehv"):
        load_taehv(light, variant="lighttae")
        load_taehv(plain, variant="taehv")
        assert not caplog.records
        load_taehv(light, variant="taehv")
        load_taehv(plain, variant="lighttae")
    assert [r.args[1] for r in caplog.records] == ["taehv", "lighttae"]
    assert "lighttaew2_1.pth" in caplog.records[0].getMessage()
