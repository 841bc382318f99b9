"""Issue 20's smaller items, each through the command line in process: outputs that would collide or replace
an input (items 3, 11), exit codes that disagreed with the table (item 10), `decode` and the model written in
the latents file, `-q` and third-party progress bars, and no stray temporary file when ffmpeg's start is
interrupted (item 15)."""

from __future__ import annotations

import os
import subprocess

import pytest
import torch
from typer.testing import CliRunner

from longlive_cli.cli import app
from longlive_cli.errors import EXIT_BAD_INPUT, EXIT_MODEL, EXIT_OK

STORY = "duration: 1s\nresolution: 64x48\nprompts:\n  - {at: 0s, text: a fox}\n"
TINY = ["-m", "tiny-random", "--device", "cpu"]


def invoke(*args: str):
    return CliRunner().invoke(app, list(args))


# --------------------------------------------------------------------------- items 3, 11
def test_two_storyboards_that_would_write_one_video_are_refused_before_any_is_made(tmp_path):
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "x.yaml").write_text(STORY)
    out = tmp_path / "out"
    result = invoke(
        "generate", str(tmp_path / "a/x.yaml"), str(tmp_path / "b/x.yaml"), "-o", f"{out}/", *TINY
    )
    assert result.exit_code == EXIT_BAD_INPUT, result.output
    assert "would both write" in result.stderr and "a/x.yaml" in result.stderr and "b/x.yaml" in result.stderr
    assert not out.exists()  # refused before the folder, or any video, was made


def test_an_output_that_is_its_own_storyboard_is_refused_even_with_force(tmp_path):
    story = tmp_path / "a.yaml"
    story.write_text(STORY)
    result = invoke("generate", str(story), "-o", str(story), "--force", *TINY)
    assert result.exit_code == EXIT_BAD_INPUT, result.output
    assert "must not replace an input" in result.stderr and story.read_text() == STORY


# --------------------------------------------------------------------------- item 10
def test_a_lora_scale_that_is_not_a_number_is_a_bad_input(tmp_path):
    story = tmp_path / "s.yaml"
    story.write_text(STORY)
    result = invoke("generate", str(story), "--dry-run", "--lora", "style.pt:abc", *TINY)
    assert result.exit_code == EXIT_BAD_INPUT, result.output
    assert "the scale 'abc' is not a number" in result.stderr


@pytest.mark.parametrize(
    ("line", "needle"),
    [
        ("sink_size: -3", "sink_size: -3 must be"),
        ("native_resolution: [0, 0]", "native_resolution: [0, 0] is not"),
        ("local_attn_size: 0", "local_attn_size: 0 must be"),
        ("denoising_steps: []", "denoising_steps: [] must be"),
    ],
)
def test_bad_numbers_in_a_spec_file_are_model_errors_when_it_is_read(tmp_path, line, needle):
    spec, story = tmp_path / "m.yaml", tmp_path / "s.yaml"
    spec.write_text(f"base: null\n{line}\n")
    story.write_text(STORY.replace("resolution: 64x48\n", ""))  # the model's native resolution is in play
    result = invoke("validate", str(story), "-m", str(spec))
    assert result.exit_code == EXIT_MODEL, result.output
    assert needle in result.stderr and str(spec) in result.stderr


# --------------------------------------------------------------------------- item 15
def test_decode_uses_the_model_written_in_the_latents_file(tmp_path):
    from longlive_cli.latents import write_latents
    from longlive_cli.models.spec import resolve_model
    from longlive_cli.plans import plan_storyboard

    plan = plan_storyboard(STORY, resolve_model("tiny-random").geometry, name="s", seed=1)
    latents = tmp_path / "l.safetensors"
    write_latents(
        latents, torch.randn(1, plan.num_latent_frames, 16, 6, 8), plan, seed=1, model="tiny-random"
    )
    out = tmp_path / "o.mp4"
    # No --model: was longlive-1.3b, whose weights are not here (exit 3); now the file's tiny-random.
    result = invoke("decode", str(latents), "-o", str(out), "--device", "cpu")
    assert result.exit_code == EXIT_OK, result.output
    assert out.exists()


def test_decode_refuses_a_fifo_as_latents_at_once(tmp_path):
    fifo = tmp_path / "l.safetensors"
    os.mkfifo(fifo)
    result = invoke("decode", str(fifo), "-o", str(tmp_path / "o.mp4"), "-m", "tiny-random")
    assert result.exit_code == EXIT_BAD_INPUT and "is a FIFO" in result.stderr, result.output


def test_quiet_turns_off_third_party_progress_bars(monkeypatch):
    from huggingface_hub.utils import are_progress_bars_disabled, enable_progress_bars

    from longlive_cli.logs import setup_logging

    monkeypatch.delenv("HF_HUB_DISABLE_PROGRESS_BARS", raising=False)
    enable_progress_bars()
    setup_logging(quiet=False)
    assert not are_progress_bars_disabled()
    setup_logging(quiet=True)
    assert are_progress_bars_disabled() and os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] == "1"
    enable_progress_bars()
    monkeypatch.delenv("HF_HUB_DISABLE_PROGRESS_BARS")


def test_ctrl_c_while_ffmpeg_starts_leaves_no_temporary_file(tmp_path, monkeypatch):
    from longlive_cli.video import VideoWriter

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(subprocess, "Popen", interrupted)
    with pytest.raises(KeyboardInterrupt):
        VideoWriter(tmp_path / "o.mp4", fps=16, width=64, height=48)
    assert list(tmp_path.iterdir()) == []


def test_a_run_aborted_by_a_second_ctrl_c_has_its_json_event(capsys):
    import json

    from longlive_cli.batch import BatchRun, Job
    from longlive_cli.models.spec import resolve_model

    job = Job(name="s.yaml", output=None)
    run = BatchRun(
        [job],
        model="tiny-random",
        spec=resolve_model("tiny-random"),
        save_latents=None,
        overrides={},
        force=False,
        batch=False,
        json_out=True,
    )
    run.job_aborted(job, 143)
    line = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert line == {"event": "aborted", "storyboard": "s.yaml", "exit_code": 143}


# --------------------------------------------------------------------------- item 12
def test_validate_and_dry_run_print_escape_sequences_escaped(tmp_path):
    story = tmp_path / "s.yaml"
    story.write_text('duration: 1s\nprompts:\n  - {at: 0s, text: "a \\e]0;pwned\\a fox \\e[2J \\0 end"}\n')
    for args in (["validate", str(story)], ["generate", str(story), "--dry-run"]):
        result = invoke(*args, *TINY[:2])
        assert result.exit_code == EXIT_OK, result.output
        assert "\x1b" not in result.output and "\x00" not in result.output and "\x07" not in result.output
        assert "a \\x1b]0;pwned\\x07 fox \\x1b[2J \\x00 end" in result.stdout
