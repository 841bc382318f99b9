"""`longlive report` (issue 24): defects injected at known times into synthetic videos are found there, a
clean video has no events, a comparison of a video with itself is perfect, a tiny-random video's switches are
found at its planned times from the plan embedded in the MP4, and the command's exit codes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from longlive_cli.errors import InputError, OutputError
from longlive_cli.quality import report
from longlive_cli.quality.timing import storyboard_timing
from longlive_cli.video import VideoWriter

FPS = 16
W, H = 96, 64
TOLERANCE_S = 0.5


def scene(t: float, *, variant: int = 0) -> np.ndarray:
    """A smoothly moving picture at time ``t`` s: diagonal colour stripes sliding at a steady speed (its
    mean colour does not change); ``variant`` 1 is another scene (other stripes, other colours)."""
    y, x = np.mgrid[0:H, 0:W].astype(np.float32)
    if variant == 0:
        phase = 2 * np.pi * ((x + 0.5 * y) / 32 - 0.4 * t)
        rgb = [120 + 60 * np.sin(phase), 140 + 50 * np.sin(phase + 2), 100 + 40 * np.sin(phase + 4)]
    else:
        phase = 2 * np.pi * ((x - y) / 12 + 0.3 * t)
        rgb = [40 + 30 * np.sin(phase), 60 + 30 * np.sin(phase + 1), 200 + 40 * np.sin(phase)]
    return np.clip(np.stack(rgb, axis=-1), 0, 255).astype(np.uint8)


def write_video(path: Path, frames: list[np.ndarray] | np.ndarray) -> Path:
    with VideoWriter(path, fps=FPS, width=W, height=H, preset="ultrafast") as writer:
        writer.write(np.stack(frames))
    return path


def clean_frames(seconds: float) -> list[np.ndarray]:
    return [scene(i / FPS) for i in range(round(seconds * FPS))]


def kinds(result: dict, kind: str) -> list[dict]:
    return [e for e in result["events"] if e["kind"] == kind]


def test_clean_video_has_no_events(tmp_path):
    result = report(write_video(tmp_path / "clean.mp4", clean_frames(6)), tmp_path / "r")
    assert result["events"] == []
    assert result["video"]["frames"] == 6 * FPS and result["video"]["prompt_times"] == "none"
    assert {p.name for p in (tmp_path / "r").iterdir()} == {"report.json", "timeline.png", "index.html"}
    on_disk = json.loads((tmp_path / "r" / "report.json").read_text())
    assert set(on_disk) == {"video", "per_second", "segments", "events", "summary"}
    assert len(on_disk["per_second"]) == 6 and len(on_disk["segments"]) == 1


def test_flicker_burst_is_found(tmp_path):
    frames = clean_frames(6)
    start = 3 * FPS  # 3.0 s: one second of brightness jumping up and down every frame
    for i in range(start, start + FPS, 2):
        frames[i] = np.clip(frames[i].astype(int) + 50, 0, 255).astype(np.uint8)
    result = report(write_video(tmp_path / "v.mp4", frames), tmp_path / "r")
    flicker = kinds(result, "flicker")
    assert len(flicker) == 1 and abs(flicker[0]["start_s"] - 3.0) <= TOLERANCE_S
    assert abs(flicker[0]["end_s"] - 4.0) <= TOLERANCE_S
    assert not kinds(result, "freeze") and not kinds(result, "colour_drift") and not kinds(result, "cut")


def test_freeze_is_found(tmp_path):
    # The picture stops at 2.0 s, is held until 3.5 s, then moves on from where it stopped.
    frames = [scene(min(i / FPS, 2.0) if i < 3.5 * FPS else i / FPS - 1.5) for i in range(6 * FPS)]
    result = report(write_video(tmp_path / "v.mp4", frames), tmp_path / "r")
    freeze = kinds(result, "freeze")
    assert len(freeze) == 1, result["events"]
    assert abs(freeze[0]["start_s"] - 2.0) <= TOLERANCE_S and abs(freeze[0]["end_s"] - 3.5) <= TOLERANCE_S
    assert [e["kind"] for e in result["events"]] == ["freeze"]


def test_slow_colour_cast_is_found(tmp_path):
    frames = clean_frames(7)
    for i in range(3 * FPS, 7 * FPS):  # from 3.0 s a red cast grows by 20 levels a second
        cast = 20 * (i - 3 * FPS) / FPS
        f = frames[i].astype(np.float32)
        f[..., 0] += cast
        f[..., 2] -= cast
        frames[i] = np.clip(f, 0, 255).astype(np.uint8)
    result = report(write_video(tmp_path / "v.mp4", frames), tmp_path / "r")
    drift = kinds(result, "colour_drift")
    assert len(drift) == 1 and abs(drift[0]["start_s"] - 3.0) <= TOLERANCE_S, result["events"]
    assert drift[0]["score"] > 10 and not kinds(result, "cut") and not kinds(result, "flicker")


def test_hard_cut_is_found(tmp_path):
    frames = [scene(i / FPS, variant=int(i >= 3 * FPS)) for i in range(6 * FPS)]
    result = report(write_video(tmp_path / "v.mp4", frames), tmp_path / "r")
    cut = kinds(result, "cut")
    assert len(cut) == 1 and abs(cut[0]["start_s"] - 3.0) <= TOLERANCE_S
    assert not kinds(result, "flicker") and not kinds(result, "freeze")


SWITCH_STORY = """\
duration: 6s
resolution: 96x64
prompts:
  - {at: 0s, text: stripes}
  - {at: 2s, text: other stripes}
  - {at: 4s, text: the same other stripes}
"""


def test_abrupt_switch_against_smooth_switch(tmp_path):
    story = tmp_path / "story.yaml"
    story.write_text(SWITCH_STORY)
    _, abrupt_at, smooth_at = (s.start_frame for s in storyboard_timing(story))
    # The picture changes scene exactly at the first switch and goes on smoothly through the second.
    frames = [scene(i / FPS, variant=int(i >= abrupt_at)) for i in range(6 * FPS)]
    result = report(write_video(tmp_path / "v.mp4", frames), tmp_path / "r", storyboard=story)
    switches = kinds(result, "switch")
    assert [s["at_s"] for s in switches] == [abrupt_at / FPS, smooth_at / FPS]
    first, second = switches
    assert first["abrupt"] and not second["abrupt"]
    assert first["abruptness"] > 4 * second["abruptness"]
    assert abs(first["start_s"] - abrupt_at / FPS) <= TOLERANCE_S
    assert [s["text"] for s in result["segments"]] == ["stripes", "other stripes", "the same other stripes"]
    assert result["video"]["prompt_times"] == "storyboard"
    page = (tmp_path / "r" / "index.html").read_text()
    assert 'src="../v.mp4"' in page and "http" not in page  # the video beside it; nothing from the network
    assert f'data-t="{first["start_s"]}"' in page and f'data-t="{second["start_s"]}"' in page  # seek targets


def test_report_is_the_api_function():
    import longlive_cli

    assert longlive_cli.report is report


def test_compare_with_itself(tmp_path):
    video = write_video(tmp_path / "v.mp4", clean_frames(2))
    result = report(video, tmp_path / "r", compare=video)
    summary = result["summary"]["compare"]
    assert summary["psnr_mean"] == "inf" and summary["ssim_mean"] == 1.0 and summary["ssim_min"] == 1.0
    assert summary["frames_compared"] == 2 * FPS and summary["frames"] == [2 * FPS, 2 * FPS]
    assert (tmp_path / "r" / "compare.png").stat().st_size > 0
    on_disk = json.loads((tmp_path / "r" / "report.json").read_text())  # strict JSON: "inf", not Infinity
    assert on_disk["compare"]["psnr"] == ["inf"] * (2 * FPS)


def test_compare_finds_where_two_videos_differ(tmp_path):
    frames = clean_frames(2)
    other = [f if i < FPS else 255 - f for i, f in enumerate(frames)]
    result = report(
        write_video(tmp_path / "a.mp4", frames),
        tmp_path / "r",
        compare=write_video(tmp_path / "b.mp4", other),
    )
    psnr = result["compare"]["psnr"]
    assert result["summary"]["compare"]["identical_frames"] == psnr.count("inf")
    assert all(p == "inf" or p > 35 for p in psnr[:FPS]) and all(p < 25 for p in psnr[FPS:])


def test_existing_report_needs_overwrite(tmp_path):
    video = write_video(tmp_path / "v.mp4", clean_frames(1))
    report(video, tmp_path / "r")
    before = (tmp_path / "r" / "report.json").read_bytes()
    with pytest.raises(OutputError, match="--force"):
        report(video, tmp_path / "r")
    assert (tmp_path / "r" / "report.json").read_bytes() == before
    report(video, tmp_path / "r", overwrite=True)


def test_missing_and_unreadable_inputs(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        report(tmp_path / "nope.mp4", tmp_path / "r")
    (tmp_path / "text.mp4").write_text("not a video\n")
    with pytest.raises(InputError, match="as a video"):
        report(tmp_path / "text.mp4", tmp_path / "r")
    assert not (tmp_path / "r").exists()


def test_embedded_plan_round_trips(tmp_path):
    from longlive_cli.models.spec import resolve_spec
    from longlive_cli.plans import plan_storyboard
    from longlive_cli.quality.timing import plan_metadata, read_embedded_plan

    # Texts with the characters ffmetadata escapes (= ; # \\ and a line break) and non-ASCII ones.
    story = {
        "duration": "6s",
        "prompts": [
            {"at": "0s", "text": "stripes"},
            {"at": "2s", "text": 'other = "stripes"; #1 \\ ü\nnext line'},
        ],
    }
    plan = plan_storyboard(story, resolve_spec("tiny-random").geometry, name="s")
    video = tmp_path / "v.mp4"
    with VideoWriter(
        video, fps=FPS, width=W, height=H, metadata=plan_metadata(plan, "tiny-random")
    ) as writer:
        writer.write(np.stack(clean_frames(1)))
    import imageio_ffmpeg

    embedded = read_embedded_plan(video, imageio_ffmpeg.get_ffmpeg_exe())
    assert embedded is not None and embedded["model"] == "tiny-random"
    assert [(t.text, t.start_frame) for t in embedded["segments"]] == [
        (s.text, s.start_video_frame) for s in plan.segments
    ]


def run_cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    return subprocess.run(
        [sys.executable, "-m", "longlive_cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


def invoke(*args: str):
    """The command in this process (``result.output``: stdout and stderr)."""
    from typer.testing import CliRunner

    from longlive_cli.cli import app

    return CliRunner().invoke(app, list(args))


def test_cli_exit_codes(tmp_path):
    video = write_video(tmp_path / "v.mp4", clean_frames(1))
    missing = run_cli("report", str(tmp_path / "nope.mp4"), "-o", str(tmp_path / "r0"))  # a real process
    assert missing.returncode == 2 and "nope.mp4" in missing.stderr and "Traceback" not in missing.stderr
    (tmp_path / "text.mp4").write_text("not a video\n")
    not_video = invoke("report", str(tmp_path / "text.mp4"), "-o", str(tmp_path / "r0"))
    assert not_video.exit_code == 2 and "Traceback" not in not_video.output
    ok = invoke("report", str(video), "-o", str(tmp_path / "r"), "--json")
    assert ok.exit_code == 0, ok.output
    printed = json.loads(next(line for line in ok.output.splitlines() if line.startswith("{")))
    assert set(printed) == {"summary", "events"} and printed["events"] == []
    again = invoke("report", str(video), "-o", str(tmp_path / "r"))
    assert again.exit_code == 4 and "--force" in again.output and "Traceback" not in again.output
    assert invoke("report", str(video), "-o", str(tmp_path / "r"), "--force").exit_code == 0


def test_generate_report_names_the_planned_switches(tmp_path):
    """A tiny-random video (random weights: coloured noise) with `generate --report`: the report takes the
    prompt times from the plan embedded in the MP4 and names a switch at each planned time."""
    story = tmp_path / "story.yaml"
    story.write_text(
        "duration: 3s\nresolution: 64x48\nprompts:\n  - {at: 0s, text: stripes}\n"
        "  - {at: 1s, text: other stripes}\n  - {at: 2s, text: the same other stripes}\n"
    )
    video = tmp_path / "out.mp4"
    run = invoke(
        "generate", str(story), "-o", str(video), "--model", "tiny-random", "--device", "cpu", "--report",
        "--json", "--seed", "11",
    )  # fmt: skip
    assert run.exit_code == 0, run.output
    lines = [json.loads(line) for line in run.output.splitlines() if line.startswith("{")]
    line = [e for e in lines if e["event"] == "report"]
    assert len(line) == 1 and line[0]["folder"] == str(tmp_path / "out_report")
    result = json.loads((tmp_path / "out_report" / "report.json").read_text())
    assert result["video"]["prompt_times"] == "plan"
    planned = [round(s.start_frame / FPS, 4) for s in storyboard_timing(story)][1:]
    assert [e["at_s"] for e in kinds(result, "switch")] == planned
    assert [e["text"] for e in kinds(result, "switch")] == ["other stripes", "the same other stripes"]
    # The same video reported again without a plan or storyboard: the times embedded in the MP4.
    again = report(video, tmp_path / "again")
    assert again["video"]["prompt_times"] == "metadata"
    assert again["video"]["model"] == "tiny-random" and again["video"]["seed"] == 11
    assert [e["at_s"] for e in kinds(again, "switch")] == planned


def test_generate_report_refuses_an_existing_report_before_generating(tmp_path):
    story = tmp_path / "story.yaml"
    story.write_text(SWITCH_STORY)
    (tmp_path / "out_report").mkdir()
    (tmp_path / "out_report" / "report.json").write_text("{}")
    run = run_cli(
        "generate", str(story), "-o", str(tmp_path / "out.mp4"), "--model", "tiny-random", "--report"
    )
    assert run.returncode == 4 and "--force" in run.stderr and "Traceback" not in run.stderr
    assert not (tmp_path / "out.mp4").exists()


def test_live_report_takes_the_switches_from_the_session_storyboard(tmp_path):
    rec = tmp_path / "rec.mp4"
    args = ["live", "--model", "tiny-random", "--device", "cpu", "--resolution", "64x48", "--seed", "7"]
    args += ["-o", str(rec), "--duration", "3s", "--prompt", "a red fox", "--report"]
    run = subprocess.run(
        [sys.executable, "-m", "longlive_cli", *args],
        input="a blue bird\n",
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert run.returncode == 0, run.stderr
    result = json.loads((tmp_path / "rec_report" / "report.json").read_text())
    assert result["video"]["prompt_times"] == "storyboard"
    session = storyboard_timing(tmp_path / "rec.yaml")
    assert len(session) == 2 and session[1].text == "a blue bird"
    assert [(e["at_s"], e["text"]) for e in kinds(result, "switch")] == [(session[1].start_s, "a blue bird")]
    no_recording = run_cli("live", "--model", "tiny-random", "--stream", str(tmp_path / "s.ts"), "--report")
    assert no_recording.returncode == 2 and "--report needs" in no_recording.stderr


def hostile_inputs(tmp_path: Path) -> dict[str, tuple[list[str], int, str]]:
    """Each bad input of `longlive report`: its arguments, the exit code and a phrase of the message (a
    truncated MP4 is reported as far as it decodes, with a warning)."""
    video = write_video(tmp_path / "v.mp4", clean_frames(1))
    (tmp_path / "empty.mp4").write_bytes(b"")
    (tmp_path / "half.mp4").write_bytes(video.read_bytes()[: video.stat().st_size // 2])
    (tmp_path / "noise.mp4").write_bytes(np.random.default_rng(0).bytes(4096))
    (tmp_path / "folder.mp4").mkdir()
    (tmp_path / "bad.yaml").write_text("duration: 6s\nprompts: [{at: 9s, text: late}]\n")
    (tmp_path / "a_file").write_text("x")
    out = str(tmp_path / "out")
    return {
        "missing": ([str(tmp_path / "nope.mp4"), "-o", out], 2, "does not exist"),
        "empty file": ([str(tmp_path / "empty.mp4"), "-o", out], 2, "as a video"),
        "truncated mp4": ([str(tmp_path / "half.mp4"), "-o", out], 0, "truncated or damaged"),
        "random bytes": ([str(tmp_path / "noise.mp4"), "-o", out], 2, "as a video"),
        "a folder": ([str(tmp_path / "folder.mp4"), "-o", out], 2, "not a file"),
        "compare missing": ([str(video), "-o", out, "--compare", str(tmp_path / "nope.mp4")], 2, "--compare"),
        "compare not a video": (
            [str(video), "-o", out, "--compare", str(tmp_path / "empty.mp4")],
            2,
            "video",
        ),
        "storyboard missing": (
            [str(video), "-o", out, "--storyboard", str(tmp_path / "no.yaml")],
            2,
            "no.yaml",
        ),
        "storyboard invalid": (
            [str(video), "-o", out, "--storyboard", str(tmp_path / "bad.yaml")],
            2,
            "bad.yaml",
        ),
        "output is a file": ([str(video), "-o", str(tmp_path / "a_file")], 4, "is a file"),
        "output parent missing": ([str(video), "-o", str(tmp_path / "no" / "such")], 4, "does not exist"),
    }


def test_hostile_inputs_end_with_their_exit_code_and_write_nothing(tmp_path):
    from typer.testing import CliRunner

    from longlive_cli.cli import app

    for name, (args, code, phrase) in hostile_inputs(tmp_path).items():
        result = CliRunner().invoke(app, ["report", *args])
        assert result.exit_code == code, (name, result.output)
        assert phrase in result.output and "Traceback" not in result.output, (name, result.output)
        if code == 0:  # reported, with the warning
            shutil.rmtree(tmp_path / "out")
        assert not (tmp_path / "out").exists(), name


@pytest.mark.parametrize(("signum", "code"), [(2, 130), (15, 143)])
def test_a_signal_stops_the_report_at_once_and_writes_nothing(tmp_path, signum, code):
    import imageio_ffmpeg

    video = tmp_path / "long.mp4"
    subprocess.run(
        [imageio_ffmpeg.get_ffmpeg_exe(), "-loglevel", "error", "-f", "lavfi", "-i",
         "testsrc2=size=320x240:rate=16:duration=600", "-c:v", "libx264", "-preset", "ultrafast", str(video)],
        check=True, timeout=120,
    )  # fmt: skip
    proc = subprocess.Popen(
        [sys.executable, "-m", "longlive_cli", "report", str(video), "-o", str(tmp_path / "r")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None and "measuring" in proc.stderr.readline()
        proc.send_signal(signum)
        assert proc.wait(timeout=30) == code
        assert "no report written" in proc.stderr.read()
    finally:
        proc.kill()
        proc.wait()
    assert not (tmp_path / "r").exists()


def test_report_does_not_import_torch(tmp_path):
    video = write_video(tmp_path / "v.mp4", clean_frames(1))
    code = (
        "import sys; from longlive_cli.cli import main; sys.argv = ['longlive', 'report', sys.argv[1], '-o', "
        "sys.argv[2]]\ntry:\n    main()\nexcept SystemExit as e:\n    assert not e.code, e.code\n"
        "assert 'torch' not in sys.modules and 'diffusers' not in sys.modules, 'torch imported'"
    )
    run = subprocess.run(
        [sys.executable, "-c", code, str(video), str(tmp_path / "r")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    assert (tmp_path / "r" / "report.json").is_file()
