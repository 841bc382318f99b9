"""The `longlive` command end to end on the tiny-random preset."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pytest
from helpers import mp4_frames
from typer.testing import CliRunner

from longlive_cli.cli import EXIT_BAD_INPUT, EXIT_MODEL, EXIT_OUTPUT, app
from longlive_cli.storyboard import load_storyboard, make_plan
from longlive_cli.video import read_video_info

runner = CliRunner()

STORY = """\
seed: 3
duration: 3s
prompts:
  - at: 0s
    text: a red fox runs through snow
  - at: 1.5s
    text: the red fox jumps over a log
"""


@pytest.fixture
def story(tmp_path: Path) -> Path:
    path = tmp_path / "fox.yaml"
    path.write_text(STORY)
    return path


def invoke(*args: str):
    return runner.invoke(app, [str(a) for a in args])


def test_generate_writes_an_mp4_that_matches_the_plan(story, tmp_path):
    out = tmp_path / "fox.mp4"
    result = invoke("generate", story, "-o", out, "--model", "tiny-random", "--resolution", "64x48")
    assert result.exit_code == 0, result.output
    plan = make_plan(load_storyboard(story), width=64, height=48)
    assert read_video_info(out) == {"frames": plan.num_video_frames, "fps": 16.0, "width": 64, "height": 48}
    assert plan.num_video_frames == 45  # 3 s -> 12 latent frames -> 4*12 - 3
    assert "prompt 2 at" in result.stderr and f"Wrote {out}" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fox.mp4", "fox.yaml"]  # no temporary file left


def test_default_resolution_is_the_models_native_size_and_seed_makes_it_repeatable(story, tmp_path):
    a, b, c = tmp_path / "a.mp4", tmp_path / "b.mp4", tmp_path / "c.mp4"
    for out, seed in ((a, "5"), (b, "5"), (c, "6")):
        assert (
            invoke("generate", story, "-o", out, "--model", "tiny-random", "--seed", seed, "-q").exit_code
            == 0
        )
    assert read_video_info(a)["width"] == 128 and read_video_info(a)["height"] == 80
    assert a.read_bytes() == b.read_bytes()
    assert a.read_bytes() != c.read_bytes()


def test_quiet_prints_only_the_summary(story, tmp_path):
    result = invoke("generate", story, "-o", tmp_path / "q.mp4", "--model", "tiny-random", "-q")
    assert result.exit_code == 0
    assert result.stdout == "" and result.stderr.strip().splitlines() == [result.stderr.strip()]
    assert result.stderr.startswith("Wrote ")


def test_default_model_fails_clearly_without_weights_and_writes_nothing(story, tmp_path):
    out = tmp_path / "real.mp4"
    result = invoke("generate", story, "-o", out, "--no-memory-check")  # the check comes before the fetch
    assert result.exit_code == EXIT_MODEL
    assert "--model tiny-random" in result.stderr and "Traceback" not in result.output
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["fox.yaml"]


def test_existing_output_is_refused_and_kept_unless_force(story, tmp_path):
    out = tmp_path / "fox.mp4"
    out.write_bytes(b"precious")
    result = invoke("generate", story, "-o", out, "--model", "tiny-random", "--resolution", "64x48")
    assert result.exit_code == EXIT_OUTPUT and "--force" in result.stderr
    assert out.read_bytes() == b"precious"
    result = invoke(
        "generate", story, "-o", out, "--model", "tiny-random", "--resolution", "64x48", "--force"
    )
    assert result.exit_code == 0 and read_video_info(out)["frames"] == 45


def test_bad_storyboard_exits_2_with_file_and_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        textwrap.dedent(
            """\
            duration: 10s
            prompts:
              - at: 0s
                text: hello
              - at: 12s
                text: too late
            """
        )
    )
    result = invoke("generate", bad, "-o", tmp_path / "x.mp4", "--model", "tiny-random")
    assert result.exit_code == EXIT_BAD_INPUT
    assert f"{bad}:5" in result.stderr and "Traceback" not in result.output
    assert not (tmp_path / "x.mp4").exists()


def test_dry_run_prints_the_plan_and_writes_nothing(story, tmp_path):
    result = invoke("generate", story, "--dry-run", "-o", tmp_path / "d.mp4")
    assert result.exit_code == 0
    assert "832x480" in result.stdout and "1.50" in result.stdout  # native size of the default model
    assert not (tmp_path / "d.mp4").exists()


def test_validate_reports_each_file(story, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("duration: 10s\nprompts: []\n")
    ok = invoke("validate", story)
    assert ok.exit_code == 0 and "ok" in ok.stdout
    both = invoke("validate", story, bad)
    assert both.exit_code == EXIT_BAD_INPUT and str(bad) in both.stderr


def test_info_lists_presets():
    result = invoke("info")
    assert result.exit_code == 0
    assert "longlive-1.3b" in result.stdout and "tiny-random" in result.stdout


def test_save_latents_then_decode_gives_the_same_video(story, tmp_path):
    out, lat, again = tmp_path / "a.mp4", tmp_path / "a.safetensors", tmp_path / "b.mp4"
    args = ["generate", story, "-o", out, "--model", "tiny-random", "--resolution", "64x48", "-q"]
    assert invoke(*args, "--save-latents", lat).exit_code == 0
    result = invoke("decode", lat, "-o", again, "--model", "tiny-random")
    assert result.exit_code == 0, result.output
    assert read_video_info(again) == read_video_info(out)
    assert np.array_equal(mp4_frames(out), mp4_frames(again))


def test_decode_rejects_a_file_that_is_not_latents(tmp_path):
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not a safetensors file")
    result = invoke("decode", junk, "-o", tmp_path / "x.mp4", "--model", "tiny-random")
    assert result.exit_code == EXIT_BAD_INPUT and "junk.safetensors" in result.stderr
    assert not (tmp_path / "x.mp4").exists()


def test_overlong_prompt_is_truncated_with_a_warning_naming_it(tmp_path):
    story = tmp_path / "long.yaml"
    story.write_text(f"duration: 1s\nprompts:\n  - at: 0s\n    text: {'word ' * 200}\n")
    result = invoke(
        "generate", story, "-o", tmp_path / "l.mp4", "--model", "tiny-random", "--resolution", "64x48"
    )
    assert result.exit_code == 0, result.output
    assert "warning: prompt 1 has" in result.stderr and "512" in result.stderr


def test_prompt_embeddings_stay_shared_per_unique_prompt(tmp_path):
    from longlive_cli import LongLive

    ll = LongLive.from_pretrained("tiny-random", device="cpu")
    plan = ll.plan(
        "duration: 3s\nprompts:\n  - {at: 0s, text: fox}\n  - {at: 1s, text: snow}\n  - {at: 2s, text: fox}\n"
    )
    ll.encode_prompts([plan])
    moved = [ll.prompt_embedding(s.text) for s in plan.segments]
    assert moved[0] is moved[2]  # one copy for the repeated prompt
    assert moved[1] is not moved[0] and moved[0].device.type == "cpu"


def test_info_lists_the_infinite_preset_and_the_rope_option_is_an_enum_of_the_spec_names():
    from longlive_cli.cli import Rope
    from longlive_cli.models.spec import ROPE_NAMES

    result = invoke("info")
    assert "longlive-1.3b-infinite" in result.stdout and "relative RoPE" in result.stdout
    assert tuple(r.value for r in Rope) == ROPE_NAMES
