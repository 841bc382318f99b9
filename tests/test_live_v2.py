"""`longlive live` on LongLive 2.0 (issue 22 item 4): `:cut` makes the next prompt a new shot and `--image`
starts the session from an image; both are kept in the session storyboard, so `longlive generate` of it makes
the session's latents bit for bit. On a model without shots / image input they are refused."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import torch
import yaml
from typer.testing import CliRunner

from longlive_cli.cli import app
from longlive_cli.latents import read_latents
from longlive_cli.live import HELP, LiveSchedule, PromptReader

V2 = ["--model", "tiny-random-2", "--device", "cpu", "--resolution", "64x32", "--seed", "5"]
CMD = [sys.executable, "-c", "from longlive_cli.cli import main; main()"]
ENV = {**os.environ, "PYTHONUNBUFFERED": "1"}
TIMEOUT = 120  # seconds: a hang fails the test instead of the suite


def _png(path: Path, seed: int = 0) -> Path:
    import numpy as np
    from PIL import Image

    pixels = np.random.default_rng(seed).integers(0, 256, (50, 90, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)
    return path


def _live(tmp: Path, lines: str, *args: str, model: list[str] = V2) -> subprocess.CompletedProcess:
    """A session of 2 blocks (2.54 s of 2.0 video) from ``--prompt`` and ``lines`` on standard input."""
    cmd = [*CMD, "live", *model, "-o", str(tmp / "s.mp4"), "--duration", "2s", "--prompt", "a red fox"]
    cmd += ["--save-latents", str(tmp / "live.safetensors"), *args]
    return subprocess.run(cmd, input=lines.encode(), capture_output=True, env=ENV, timeout=TIMEOUT)


def _generate(tmp: Path, story: Path) -> torch.Tensor:
    """``longlive generate story`` (in process: no second interpreter start) -> its latents."""
    args = ["generate", str(story), "-o", str(tmp / "g.mp4"), "--model", "tiny-random-2", "--device", "cpu"]
    args += ["-q", "--force", "--save-latents", str(tmp / "gen.safetensors")]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    return read_latents(tmp / "gen.safetensors")[0]


def test_cut_starts_a_new_shot_and_the_session_storyboard_reproduces_it(tmp_path):
    # The lines arrive while the model loads: "a storm" waits in line and lands on block 1.
    live = _live(tmp_path, ":cut\na storm at sea\n")
    assert live.returncode == 0, live.stderr.decode()
    assert "the next prompt starts a new shot" in live.stderr.decode()
    session = yaml.safe_load((tmp_path / "s.yaml").read_text())
    assert session["prompts"][0] == {"at": "0s", "text": "a red fox"}
    assert session["prompts"][1]["text"] == "a storm at sea" and session["prompts"][1]["cut"] is True
    latents = read_latents(tmp_path / "live.safetensors")[0]
    assert torch.equal(latents, _generate(tmp_path, tmp_path / "s.yaml"))
    # The cut is what the session storyboard says: without it, the same prompts make other latents.
    (tmp_path / "nocut.yaml").write_text((tmp_path / "s.yaml").read_text().replace("cut: true", "cut: false"))
    assert not torch.equal(latents, _generate(tmp_path, tmp_path / "nocut.yaml"))


def test_cut_on_a_model_without_shots_is_refused_and_the_session_goes_on(tmp_path):
    tiny = ["--model", "tiny-random", "--device", "cpu", "--resolution", "64x48", "--seed", "5"]
    live = _live(tmp_path, ":cut\na storm at sea\n", model=tiny)
    stderr = live.stderr.decode()
    assert live.returncode == 0, stderr
    assert stderr.count("has no shots") == 1 and "tiny-random-2" in stderr and "Traceback" not in stderr
    session = yaml.safe_load((tmp_path / "s.yaml").read_text())
    assert [p["text"] for p in session["prompts"]] == ["a red fox", "a storm at sea"]  # it went on
    assert not any("cut" in p for p in session["prompts"])


def test_image_starts_the_session_and_the_session_storyboard_reproduces_it(tmp_path):
    photo = _png(tmp_path / "photo.png")
    live = _live(tmp_path, "", "--image", str(photo))
    assert live.returncode == 0, live.stderr.decode()
    session = yaml.safe_load((tmp_path / "s.yaml").read_text())
    assert session["image"] == str(photo.absolute())
    latents = read_latents(tmp_path / "live.safetensors")[0]
    assert torch.equal(latents, _generate(tmp_path, tmp_path / "s.yaml"))
    # The image is what made them: another picture, another video.
    (tmp_path / "other.yaml").write_text(
        (tmp_path / "s.yaml").read_text().replace(str(photo.absolute()), str(_png(tmp_path / "b.png", 1)))
    )
    assert not torch.equal(latents, _generate(tmp_path, tmp_path / "other.yaml"))


def test_a_bad_image_or_a_model_without_image_input_is_exit_2_before_loading(tmp_path, monkeypatch):
    from longlive_cli.api import LongLive

    def no_load(*args, **kwargs):
        raise AssertionError("the model was loaded")

    monkeypatch.setattr(LongLive, "from_pretrained", no_load)
    (tmp_path / "text.png").write_text("not an image at all")
    _png(tmp_path / "good.png")
    cases = [
        ("text.png", "tiny-random-2", "not a readable PNG or JPEG"),
        ("missing.png", "tiny-random-2", "cannot read it"),
        ("photo.bmp", "tiny-random-2", "not a .png, .jpg or .jpeg"),
        ("good.png", "tiny-random", "takes no image"),
    ]
    for name, model, message in cases:
        args = ["live", "--model", model, "--device", "cpu", "-o", str(tmp_path / "s.mp4"), "--prompt", "x"]
        result = CliRunner().invoke(app, [*args, "--image", str(tmp_path / name)])
        assert result.exit_code == 2, (name, result.output)
        assert message in result.output and "Traceback" not in result.output, result.output
        assert not (tmp_path / "s.mp4").exists() and not (tmp_path / "s.yaml").exists()


def test_cut_before_the_first_prompt_is_dropped_and_a_superseded_cut_goes_to_the_newer_prompt(caplog):
    texts: list[str] = []

    def encode(text: str) -> torch.Tensor:
        texts.append(text)
        return torch.full((1, 1, 4), float(len(texts)))

    schedule = LiveSchedule(None, 10, lambda: False)
    reader = PromptReader(schedule, shots=True)
    schedule.attach_encoder(encode, scene_cut_prefix="[cut] ")
    with caplog.at_level(logging.INFO):
        for line in (b":cut", b"first", b":cut", b"second", b"third"):
            reader.handle(line)
        assert schedule.wait_for_first(timeout=5) == "first" and schedule.cut_embedding(0) is None
        assert "starts the first shot already" in caplog.text
        assert schedule.segment_for_block(1) == 1 and schedule.text(1) == "third" and schedule.is_cut(1)
        cut = schedule.cut_embedding(1)
    assert cut is not None and "[cut] third" in texts and texts[texts.index("[cut] third") + 1] == "third"
    schedule.close()


def test_help_texts_name_cut_and_image():
    wide = {"COLUMNS": "240"}
    live = CliRunner().invoke(app, ["live", "--help"], env=wide).output
    assert ":cut" in live and "--image" in live and ":cut" in HELP
