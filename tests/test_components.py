"""Components declare what they can do (issue 21 item 3): a toy sampler and a toy decoder from a test
module, registered at run time or installed as entry points, run through the front door; every check reads
their declarations; a broken plugin is a clear ModelError naming it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import toy_components
from helpers import mp4_frames
from toy_components import ALIEN_DECODER, TOY_DECODER, TOY_LEVEL, TOY_SAMPLER
from typer.testing import CliRunner

import longlive_cli
from longlive_cli import LongLive
from longlive_cli.cli import app
from longlive_cli.errors import EXIT_BAD_INPUT, EXIT_MODEL, InputError, ModelError
from longlive_cli.events import BlockDone, Finished
from longlive_cli.registry import (
    ComponentLoadError,
    decoder_names,
    register_decoder,
    register_sampler,
    sampler_info,
    sampler_names,
    unregister,
)

TESTS = Path(__file__).resolve().parent
ONE_PROMPT = "duration: 2s\nresolution: 64x48\nprompts:\n  - {at: 0s, text: a lighthouse at dusk}\n"
TWO_PROMPTS = ONE_PROMPT + "  - {at: 1s, text: a lighthouse in a storm}\n"
runner = CliRunner()


@pytest.fixture
def toy_spec(tmp_path: Path) -> Path:
    """A model spec naming the toy sampler and decoder on the tiny random transformer."""
    spec = tmp_path / "toy-model.yaml"
    spec.write_text("base: null\nsampler: toy\ndecoder: toy\nnative_resolution: [64, 48]\n")
    return spec


@pytest.fixture
def registered():
    register_sampler(TOY_SAMPLER)
    register_decoder(TOY_DECODER)
    register_decoder(ALIEN_DECODER)
    yield
    for name in ("toy", "alien"):
        unregister(name)


def _story(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "story.yaml"
    path.write_text(text)
    return path


def _levels(path: Path) -> list[float]:
    return [float(frame.mean()) for frame in mp4_frames(path)]


def _expected_levels(num_blocks: int, fpb: int = 3) -> list[int]:
    levels = []
    for block in range(num_blocks):
        frames = 4 * fpb - 3 if block == 0 else 4 * fpb
        levels += [TOY_LEVEL * (block + 1)] * frames
    return levels


def test_a_registered_toy_sampler_and_decoder_make_the_video_through_generate(registered, toy_spec, tmp_path):
    out = tmp_path / "toy.mp4"
    result = longlive_cli.generate(_story(tmp_path, ONE_PROMPT), out, model=str(toy_spec), seed=1)
    assert isinstance(result, Finished) and result.path == out
    got, want = _levels(out), _expected_levels(3)  # 2 s at 16 fps -> 3 blocks of 3 latent frames
    assert len(got) == len(want) == result.num_video_frames
    assert np.allclose(got, want, atol=3)  # H.264 keeps flat grey frames within a few levels


def test_the_checks_read_the_toy_declarations(registered, toy_spec, tmp_path):
    # The toy sampler declares no prompt switches, no transitions, no relative RoPE and 3 blocks at least.
    with pytest.raises(InputError, match=r"generates a whole video under one prompt; this storyboard has 2"):
        longlive_cli.generate(_story(tmp_path, TWO_PROMPTS), tmp_path / "a.mp4", model=str(toy_spec))
    short = ONE_PROMPT.replace("duration: 2s", "duration: 0.5s")
    with pytest.raises(InputError, match="needs at least 3 blocks"):
        longlive_cli.generate(_story(tmp_path, short), tmp_path / "b.mp4", model=str(toy_spec))
    with pytest.raises(InputError, match="relative works with the longlive sampler"):
        longlive_cli.generate(
            _story(tmp_path, ONE_PROMPT), tmp_path / "c.mp4", model=str(toy_spec), rope="relative"
        )
    assert not any(p.suffix == ".mp4" for p in tmp_path.iterdir())
    # A decoder for another latent space is refused for a Wan2.1 model, by name of both.
    result = runner.invoke(app, ["generate", str(_story(tmp_path, ONE_PROMPT)), "-m", "tiny-random",
                                 "--decoder", "alien", "-o", str(tmp_path / "d.mp4")])  # fmt: skip
    assert result.exit_code == EXIT_BAD_INPUT and "Traceback" not in result.output
    assert "decoder alien reads some-other-vae latents" in result.stderr
    # The built-ins declare what they do, and the same checks read them; `info` lists every declaration.
    assert sampler_info("longlive").transitions and not sampler_info("rolling-forcing").transitions
    listed = runner.invoke(app, ["info"]).output
    assert "toy              constant latents, for tests (one prompt; at least 3 blocks)" in listed
    assert "rolling-forcing" in listed and "one block per denoising step" in listed
    assert "(some-other-vae latents; the model's own VAE)" in listed


def _install_plugin(site: Path, name: str, entry_points: str) -> None:
    """A distribution's metadata in ``site`` (on sys.path), as pip would write it."""
    info = site / f"{name}-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(entry_points)


def test_entry_point_plugins_are_found_lazily_and_run_through_stream(tmp_path, monkeypatch, toy_spec):
    site = tmp_path / "site"
    _install_plugin(
        site,
        "toy_plugin",
        "[longlive_cli.samplers]\ntoy = toy_components:TOY_SAMPLER\n"
        "[longlive_cli.decoders]\ntoy = toy_components:TOY_DECODER\n",
    )
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.syspath_prepend(str(TESTS))
    try:
        assert "toy" in sampler_names() and "toy" in decoder_names()  # listed without being loaded
        ll = LongLive.from_pretrained(str(toy_spec), device="cpu")
        plan = ll.plan(_story(tmp_path, ONE_PROMPT), seed=3)
        out = tmp_path / "stream.mp4"
        events = list(ll.stream(plan, out))
        assert sum(isinstance(e, BlockDone) for e in events) == 3 and isinstance(events[-1], Finished)
        assert np.allclose(_levels(out), _expected_levels(3), atol=3)
        assert sampler_info("toy") is toy_components.TOY_SAMPLER
    finally:
        unregister("toy")


def test_a_broken_plugin_is_a_model_error_that_names_it(tmp_path, monkeypatch, toy_spec):
    site = tmp_path / "site"
    _install_plugin(site, "broken_plugin", "[longlive_cli.samplers]\ntoy = no_such_module_here:SAMPLER\n")
    monkeypatch.syspath_prepend(str(site))
    with pytest.raises(ComponentLoadError) as err:
        sampler_info("toy")
    assert isinstance(err.value, ModelError)
    assert "sampler plugin 'toy'" in str(err.value) and "no_such_module_here" in str(err.value)
    assert "broken_plugin" in str(err.value)
    result = runner.invoke(
        app,
        ["generate", str(_story(tmp_path, ONE_PROMPT)), "-m", str(toy_spec), "-o", str(tmp_path / "x.mp4")],
    )
    assert result.exit_code == EXIT_MODEL and "Traceback" not in result.output
    assert "sampler plugin 'toy'" in result.stderr
    assert not (tmp_path / "x.mp4").exists()


def test_registering_refuses_a_built_in_name_and_a_taken_one(registered):
    from dataclasses import replace

    with pytest.raises(ValueError, match="built-in"):
        register_sampler(replace(TOY_SAMPLER, name="longlive"))
    with pytest.raises(ValueError, match="registered already"):
        register_decoder(TOY_DECODER)
    register_decoder(TOY_DECODER, replace=True)
