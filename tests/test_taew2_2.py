"""The ``taew2_2`` decoder: TAEHV for Wan2.2 latents (48 channels, pixel-shuffle patch 2, 16x spatial).

Files are written here in the official ``taew2_2.pth`` layout, the key names and shapes derived in this file
from madebyollin/taehv ``taehv.py`` (``TAEHV(patch_size=2, latent_channels=48)``), not from the project's
writer; the reference decode is the official time-parallel evaluation, written here independently.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import mp4_frames
from typer.testing import CliRunner

from longlive_cli.cli import app
from longlive_cli.decoders.taehv import (
    TINY_TAEHV_WIDTHS,
    MemBlock,
    StreamingTAEHVDecoder,
    TAEHVDecoder,
    TGrow,
    load_taehv,
    tiny_taehv,
)
from longlive_cli.errors import EXIT_BAD_INPUT, ModelError
from longlive_cli.models.spec import components, resolve_spec
from longlive_cli.registry import decoder_info
from longlive_cli.video import read_video_info

H, W = 2, 3  # latent height, width (16x: 32x48 pixels)


def _official_shapes(widths, latent_channels=48, patch=2, encoder_width=4) -> dict[str, tuple[int, ...]]:
    """``taehv.py`` ``TAEHV.__init__`` (base variant) key → shape: decoder ``Clamp, conv(C, n0), ReLU``, three
    stages ``[3 MemBlock(n), Upsample, TGrow(n, s), conv(n, n', no bias)]`` with s = 1, 2, 2, then ``ReLU,
    conv(n3, 3·p²)``; encoder ``conv(3·p², e)``, three ``[TPool(e, s), conv(e, e, stride 2, no bias), 3
    MemBlock(e)]`` with s = 2, 2, 1, ``conv(e, C)``."""
    n = list(widths)
    out: dict[str, tuple[int, ...]] = {
        "decoder.1.weight": (n[0], latent_channels, 3, 3),
        "decoder.1.bias": (n[0],),
        "decoder.22.weight": (3 * patch**2, n[3], 3, 3),
        "decoder.22.bias": (3 * patch**2,),
    }
    for stage, stride in enumerate((1, 2, 2)):
        c, first = n[stage], 3 + 6 * stage
        for i in range(first, first + 3):
            for j, c_in in ((0, 2 * c), (2, c), (4, c)):
                out[f"decoder.{i}.conv.{j}.weight"] = (c, c_in, 3, 3)
                out[f"decoder.{i}.conv.{j}.bias"] = (c,)
        out[f"decoder.{first + 4}.conv.weight"] = (c * stride, c, 1, 1)
        out[f"decoder.{first + 5}.weight"] = (n[stage + 1], c, 3, 3)
    e = encoder_width
    out["encoder.0.weight"], out["encoder.0.bias"] = (e, 3 * patch**2, 3, 3), (e,)
    for stage, stride in enumerate((2, 2, 1)):
        first = 2 + 5 * stage
        out[f"encoder.{first}.conv.weight"] = (e, e * stride, 1, 1)
        out[f"encoder.{first + 1}.weight"] = (e, e, 3, 3)
        for i in range(first + 2, first + 5):
            for j, c_in in ((0, 2 * e), (2, e), (4, e)):
                out[f"encoder.{i}.conv.{j}.weight"] = (e, c_in, 3, 3)
                out[f"encoder.{i}.conv.{j}.bias"] = (e,)
    out["encoder.17.weight"], out["encoder.17.bias"] = (latent_channels, e, 3, 3), (latent_channels,)
    return out


def _official_file(path: Path, seed: int = 0, **kwargs) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    sd = {
        k: torch.randn(s, generator=g) * 0.2 for k, s in _official_shapes(TINY_TAEHV_WIDTHS, **kwargs).items()
    }
    sd["decoder.22.bias"] += 0.5
    torch.save(sd, path)
    return sd


def _latents(frames: int, seed: int = 1) -> torch.Tensor:
    return torch.randn(1, frames, 48, H, W, generator=torch.Generator().manual_seed(seed))


def _reference_decode(model: TAEHVDecoder, z: torch.Tensor) -> torch.Tensor:
    """Official parallel evaluation (``apply_model_with_memblocks_parallel``, then
    ``postprocess_output_frames``: pixel shuffle by 2 and clamp; ``decode_video`` drops 3 frames):
    ``[1, T, 48, h, w]`` → uint8 ``[1, 4T - 3, 16h, 16w, 3]``."""
    x = z[0]
    for layer in model.decoder:
        if isinstance(layer, MemBlock):
            past = F.pad(x, (0, 0, 0, 0, 0, 0, 1, 0))[: x.shape[0]]
            x = F.relu(layer.conv(torch.cat([x, past], dim=1)) + x)
        elif isinstance(layer, TGrow):
            x = layer.conv(x).reshape(-1, x.shape[1], *x.shape[2:])
        else:
            x = layer(x)
    video = F.pixel_shuffle(x, 2).clamp(0, 1)[3:]
    return (video * 255).round().to(torch.uint8).permute(0, 2, 3, 1)[None]


def test_registry_declares_taew2_2_for_wan22_latents():
    info = decoder_info("taew2_2")
    assert info.latent_space == "wan2.2"
    assert info.weights == "lightx2v/Autoencoders:taew2_2.pth"
    # on a 2.0 model it replaces the Wan2.2 VAE in what is fetched
    roles = {p.role: str(p.source) for p in components(resolve_spec("longlive-2.0-5b", decoder="taew2_2"))}
    assert roles["decoder"] == "lightx2v/Autoencoders:taew2_2.pth" and "vae" not in roles
    with torch.device("meta"):
        real = TAEHVDecoder(latent_channels=48, patch_size=2)
    shapes = _official_shapes((256, 128, 64, 64))
    assert {k: tuple(v.shape) for k, v in real.state_dict().items()} == {
        k: s for k, s in shapes.items() if k.startswith("decoder.")
    }


def test_strict_loader_reads_the_official_layout(tmp_path):
    path = tmp_path / "taew2_2.pth"
    sd = _official_file(path)
    model = decoder_info("taew2_2").network_loader()(path)  # the registry's loader: load_taehv, Wan2.2 layout
    assert (model.latent_channels, model.patch_size, model.widths) == (48, 2, TINY_TAEHV_WIDTHS)
    for key, value in model.state_dict().items():
        assert torch.equal(value, sd[key]), key
    out = StreamingTAEHVDecoder(model).decode(_latents(3))
    assert out.shape == (1, 4 * 3 - 3, 16 * H, 16 * W, 3)
    with torch.no_grad():
        assert (out.int() - _reference_decode(model, _latents(3)).int()).abs().max() <= 1


@pytest.mark.parametrize(
    ("kind", "first"),
    [
        ("missing", r"missing decoder\.22\.bias"),
        ("wan21", r"decoder\.1\.weight has shape \(8, 16, 3, 3\), expected \(8, 48, 3, 3\)"),
    ],
)
def test_strict_loader_names_file_and_key(tmp_path, kind, first):
    path = tmp_path / f"{kind}.pth"
    if kind == "missing":
        sd = _official_file(path)
        del sd["decoder.22.bias"]
        torch.save(sd, path)
    else:  # a Wan2.1 file (taew2_1 layout: 16 channels, patch 1) given as taew2_2
        _official_file(path, latent_channels=16, patch=1)
    with pytest.raises(
        ModelError, match=rf"{kind}\.pth: not a TAEHV decoder for Wan2\.2 latents.*: {first}"
    ) as err:
        load_taehv(path, variant="taehv", wan22=True)
    assert err.value.exit_code == 3 and "taew2_2.pth" in str(err.value)


def test_block_by_block_equals_all_at_once():
    model = tiny_taehv(seed=4, wan22=True)
    latents = _latents(7)
    whole = StreamingTAEHVDecoder(model).decode(latents)
    dec = StreamingTAEHVDecoder(model)
    parts = [dec.decode(latents[:, a:b]) for a, b in ((0, 2), (2, 3), (3, 7))]
    assert [p.shape[1] for p in parts] == [5, 4, 16]
    assert torch.equal(torch.cat(parts, dim=1), whole)
    assert whole.shape == (1, 25, 16 * H, 16 * W, 3) and whole.float().std() > 8
    with pytest.raises(ValueError, match="48 channels"):
        StreamingTAEHVDecoder(model).decode(torch.zeros(1, 2, 16, H, W))


def test_generate_with_taew2_2_on_a_longlive2_model(tmp_path):
    story = tmp_path / "s.yaml"
    story.write_text("duration: 1s\nresolution: 64x32\nprompts: [{at: 0s, text: a red fox}]\n")
    out = tmp_path / "o.mp4"
    args = ["generate", str(story), "--model", "tiny-random-2", "--device", "cpu", "-q"]
    lat = tmp_path / "o.safetensors"
    result = CliRunner().invoke(
        app, [*args, "-o", str(out), "--decoder", "taew2_2", "--save-latents", str(lat)]
    )
    assert result.exit_code == 0, result.output
    info = read_video_info(out)
    assert (info["width"], info["height"], info["frames"]) == (64, 32, 4 * 8 - 3)
    # the frames are taew2_2's: decoding the saved latents with it gives them again, the Wan2.2 VAE others
    decoded = {}
    for decoder in ("taew2_2", "wan"):
        again = tmp_path / f"{decoder}.mp4"
        cmd = [
            "decode",
            str(lat),
            "-o",
            str(again),
            "-m",
            "tiny-random-2",
            "--device",
            "cpu",
            "--decoder",
            decoder,
        ]
        assert CliRunner().invoke(app, cmd).exit_code == 0
        decoded[decoder] = mp4_frames(again)
    assert np.array_equal(decoded["taew2_2"], mp4_frames(out))
    assert not np.array_equal(decoded["wan"], mp4_frames(out))
    refused = CliRunner().invoke(app, [*args, "-o", str(tmp_path / "x.mp4"), "--decoder", "taehv"])
    assert refused.exit_code == EXIT_BAD_INPUT and "taew2_2" in refused.output, refused.output
    assert not (tmp_path / "x.mp4").exists()
