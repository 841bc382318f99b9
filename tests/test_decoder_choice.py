"""Choosing the decoder: --decoder on generate and decode, the spec's decoder key, what gets fetched."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from helpers import LIGHTHOUSE_STORY, mp4_frames
from typer.testing import CliRunner

from longlive_cli.cli import app
from longlive_cli.errors import EXIT_BAD_INPUT, EXIT_MODEL
from longlive_cli.models.spec import PRESETS, components, resolve_spec
from longlive_cli.video import read_video_info

runner = CliRunner()


@pytest.fixture
def story(tmp_path: Path) -> Path:
    path = tmp_path / "s.yaml"
    path.write_text(LIGHTHOUSE_STORY)
    return path


@pytest.mark.slow
@pytest.mark.parametrize("decoder", ["taehv", "lighttae", "lightvae"])
def test_generate_and_decode_with_a_fast_decoder(story, tmp_path, decoder):
    out, lat, again = tmp_path / "a.mp4", tmp_path / "a.safetensors", tmp_path / "b.mp4"
    args = ["generate", str(story), "-o", str(out), "-m", "tiny-random", "--seed", "2", "-q"]
    result = runner.invoke(app, [*args, "--decoder", decoder, "--save-latents", str(lat)])
    assert result.exit_code == 0, result.output
    assert read_video_info(out)["frames"] == 4 * 9 - 3  # 2 s -> 9 latent frames -> 4L - 3, as the Wan VAE
    result = runner.invoke(
        app, ["decode", str(lat), "-o", str(again), "-m", "tiny-random", "--decoder", decoder]
    )
    assert result.exit_code == 0, result.output
    assert np.array_equal(mp4_frames(out), mp4_frames(again))
    wan = tmp_path / "wan.mp4"
    assert runner.invoke(app, ["decode", str(lat), "-o", str(wan), "-m", "tiny-random"]).exit_code == 0
    assert not np.array_equal(mp4_frames(wan), mp4_frames(out))  # another decoder, other frames


def test_a_fast_decoder_replaces_the_wan_vae_in_what_is_fetched():
    roles = {p.role: str(p.source) for p in components(resolve_spec("longlive-1.3b", decoder="taehv"))}
    assert roles["decoder"] == "lightx2v/Autoencoders:taew2_1.pth" and "vae" not in roles
    assert "decoder" not in {p.role for p in components(PRESETS["longlive-1.3b"])}
    lighttae = {p.role: str(p.source) for p in components(resolve_spec("longlive-1.3b", decoder="lighttae"))}
    assert lighttae["decoder"] == "lightx2v/Autoencoders:lighttaew2_1.pth"


def test_the_spec_names_its_decoder_and_a_wrong_one_is_refused(story, tmp_path):
    spec = tmp_path / "m.yaml"
    spec.write_text("base: Wan-AI/Wan2.1-T2V-1.3B-Diffusers\ndecoder: taehv\n")
    assert resolve_spec(str(spec)).decoder == "taehv"
    spec.write_text("base: Wan-AI/Wan2.1-T2V-1.3B-Diffusers\ndecoder: fastest\n")
    result = runner.invoke(app, ["generate", str(story), "-m", str(spec), "-o", str(tmp_path / "x.mp4")])
    assert result.exit_code == EXIT_MODEL and "decoder: unknown decoder 'fastest'" in result.stderr


def test_an_unknown_decoder_option_exits_2_and_lists_the_declared_ones(story, tmp_path):
    result = runner.invoke(
        app, ["generate", str(story), "--decoder", "fastest", "-o", str(tmp_path / "x.mp4")]
    )
    assert result.exit_code == EXIT_BAD_INPUT and "Traceback" not in result.output
    assert "unknown decoder 'fastest'; known: " in result.stderr and "lighttae" in result.stderr


def test_download_offline_names_only_the_chosen_decoders_file():
    result = runner.invoke(app, ["download", "longlive-1.3b", "--offline", "--decoder", "taehv"])
    assert result.exit_code == EXIT_MODEL
    assert "lightx2v/Autoencoders:taew2_1.pth" in result.stdout and "Wan2.1_VAE.pth" not in result.stdout
