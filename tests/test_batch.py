"""Batch use: many storyboards, stdin, shards, JSON events, exit codes, interrupts, write failures."""

from __future__ import annotations

import functools
import json
import operator
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from longlive_cli.batch import Job, Status, exit_code, parse_shard, select_shard
from longlive_cli.cli import app
from longlive_cli.errors import (
    EXIT_BAD_INPUT,
    EXIT_FAILURE,
    EXIT_MODEL,
    EXIT_OUTPUT,
    EXIT_PARTIAL,
    EXIT_SIGINT,
    EXIT_SIGTERM,
)
from longlive_cli.video import read_video_info

TINY = ["--model", "tiny-random", "--resolution", "64x48"]


def story(seed: int = 1, duration: str = "1.5s", second: str = "0.75s") -> str:
    return (
        f"seed: {seed}\nduration: {duration}\nprompts:\n"
        "  - {at: 0s, text: a kite over a beach}\n"
        f"  - {{at: {second}, text: the kite dives into the sea}}\n"
    )


@pytest.fixture
def boards(tmp_path: Path) -> list[Path]:
    paths = []
    for i, name in enumerate(("alpha", "beta", "gamma")):
        p = tmp_path / f"{name}.yaml"
        p.write_text(story(seed=i))
        paths.append(p)
    return paths


def invoke(*args, input: str | None = None):
    return CliRunner().invoke(app, [str(a) for a in args], input=input)


def test_many_storyboards_go_to_a_folder_named_after_them_then_are_skipped(boards, tmp_path):
    out = tmp_path / "videos"
    result = invoke("generate", *boards, "-o", f"{out}/", *TINY, "-q")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["alpha.mp4", "beta.mp4", "gamma.mp4"]
    assert "3 done, 0 failed, 0 skipped" in result.stderr
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    again = invoke("generate", *boards, "-o", out, *TINY, "-q")
    assert again.exit_code == 0 and "0 done, 0 failed, 3 skipped" in again.stderr
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == before
    forced = invoke("generate", boards[0], boards[1], "-o", out, *TINY, "-q", "--force")
    assert forced.exit_code == 0 and (out / "alpha.mp4").stat().st_mtime_ns != before["alpha.mp4"]


def test_a_bad_storyboard_costs_only_its_own_video(boards, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("duration: 1s\nprompts: []\n")
    out = tmp_path / "o"
    result = invoke("generate", bad, *boards[:2], "-o", out, *TINY, "-q")
    assert result.exit_code == EXIT_PARTIAL
    assert sorted(p.name for p in out.iterdir()) == ["alpha.mp4", "beta.mp4"]
    assert "bad.yaml" in result.stderr
    out2 = tmp_path / "o2"
    fast = invoke("generate", bad, *boards[:2], "-o", out2, *TINY, "-q", "--fail-fast")
    assert fast.exit_code == EXIT_BAD_INPUT and not any(out2.iterdir())


def test_storyboard_from_stdin(tmp_path):
    out = tmp_path / "from-stdin.mp4"
    result = invoke("generate", "-", "-o", out, *TINY, "-q", input=story())
    assert result.exit_code == 0, result.output
    assert read_video_info(out)["frames"] == 21


def test_json_events_are_one_object_per_line_on_stdout(boards, tmp_path):
    out = tmp_path / "j"
    result = invoke("generate", boards[0], "-o", f"{out}/", *TINY, "--json")
    assert result.exit_code == 0, result.output
    events = [json.loads(line) for line in result.stdout.splitlines()]
    kinds = [e["event"] for e in events]
    assert kinds[0] == "plan" and kinds[1] == "generation_started" and kinds[-2:] == ["finished", "summary"]
    assert "prompt_switched" in kinds and kinds.count("block_done") == events[0]["plan"]["num_blocks"]
    assert all(e["storyboard"] == str(boards[0]) for e in events[:-1])
    done = [e for e in events if e["event"] == "block_done"]
    assert [e["video_frames_done"] for e in done] == [9, 21]
    assert events[-2]["path"] == str((out / "alpha.mp4").absolute())
    assert events[-1] == {
        "event": "summary",
        "exit_code": 0,
        "done": 1,
        "skipped": 0,
        "failed": 0,
        "interrupted": 0,
    }
    assert "\x1b" not in result.stderr


def test_validate_json_for_ci(boards, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("duration: 10s\nprompts:\n  - {at: 0s, text: a}\n  - {at: 20s, text: b}\n")
    result = invoke("validate", boards[0], bad, "--json")
    assert result.exit_code == EXIT_BAD_INPUT
    valid, invalid = (json.loads(line) for line in result.stdout.splitlines())
    assert valid["event"] == "valid" and valid["plan"]["num_blocks"] == 2
    assert invalid["event"] == "invalid" and invalid["line"] == 4 and "20s" in invalid["message"]


def test_shards_are_disjoint_and_cover_the_list():
    items = [f"s{i}.yaml" for i in range(7)]
    slices = [select_shard(items, k, 3) for k in (1, 2, 3)]
    assert sorted(functools.reduce(operator.iadd, slices, [])) == sorted(items)
    assert slices[0] == ["s0.yaml", "s3.yaml", "s6.yaml"]
    assert parse_shard("2/3") == (2, 3)
    for bad in ("0/3", "4/3", "x", "1/"):
        with pytest.raises(ValueError, match=r"K/N|between"):
            parse_shard(bad)


def test_shard_option_generates_only_its_slice(boards, tmp_path):
    out = tmp_path / "s"
    result = invoke("generate", *boards, "-o", f"{out}/", *TINY, "-q", "--shard", "2/2")
    assert result.exit_code == 0
    assert [p.name for p in out.iterdir()] == ["beta.mp4"]


def test_seed_offset_makes_a_variant(boards, tmp_path):
    a, b, c = tmp_path / "a.mp4", tmp_path / "b.mp4", tmp_path / "c.mp4"
    assert (
        invoke("generate", boards[2], "-o", a, *TINY, "-q", "--seed-offset", "3").exit_code == 0
    )  # seed 2+3
    assert invoke("generate", boards[2], "-o", b, *TINY, "-q", "--seed", "5").exit_code == 0
    assert invoke("generate", boards[2], "-o", c, *TINY, "-q").exit_code == 0
    assert a.read_bytes() == b.read_bytes() != c.read_bytes()


def test_exit_code_rules():
    def job(status, code=0):
        return Job(name="x", output=Path("x.mp4"), status=status, code=code)

    assert exit_code([job(Status.done), job(Status.skipped)]) == 0
    assert exit_code([job(Status.done), job(Status.failed, EXIT_BAD_INPUT)]) == EXIT_PARTIAL
    assert exit_code([job(Status.failed, EXIT_OUTPUT), job(Status.failed, EXIT_BAD_INPUT)]) == EXIT_OUTPUT
    assert exit_code([job(Status.done), job(Status.interrupted, EXIT_SIGTERM)]) == EXIT_SIGTERM


def test_model_error_exits_3(boards, tmp_path):
    result = invoke("generate", boards[0], "-o", tmp_path / "m.mp4", "--json", "--no-memory-check")  # offline
    assert result.exit_code == EXIT_MODEL
    assert json.loads(result.stdout.splitlines()[-1])["exit_code"] == EXIT_MODEL


def test_runtime_failure_exits_1_and_leaves_nothing(boards, tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("CUDA out of memory (simulated)")
        yield

    monkeypatch.setattr("longlive_cli.samplers.longlive.sample_longlive", broken)  # what the registry loads
    result = invoke("generate", boards[0], "-o", tmp_path / "r.mp4", *TINY)
    assert result.exit_code == EXIT_FAILURE and "out of memory (simulated)" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["alpha.yaml", "beta.yaml", "gamma.yaml"]


def test_write_failures(boards, tmp_path, monkeypatch):
    missing = invoke("generate", boards[0], "-o", tmp_path / "no" / "such" / "x.mp4", *TINY)
    assert missing.exit_code == EXIT_OUTPUT and "does not exist" in missing.stderr

    import shutil

    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(shutil, "disk_usage", lambda p: usage._replace(free=1000))
    full = invoke("generate", boards[0], "-o", tmp_path / "full.mp4", *TINY)
    assert full.exit_code == EXIT_OUTPUT and "Not enough free space" in full.stderr
    monkeypatch.undo()

    from longlive_cli.video import OutputError, VideoWriter

    real_write = VideoWriter.write
    calls = []

    def failing_write(self, frames):
        calls.append(1)
        if len(calls) == 2:
            raise OutputError("ffmpeg: No space left on device (simulated)")
        return real_write(self, frames)

    monkeypatch.setattr(VideoWriter, "write", failing_write)
    result = invoke("generate", boards[0], "-o", tmp_path / "w.mp4", *TINY)
    assert result.exit_code == EXIT_OUTPUT and "No space left" in result.stderr
    assert not any(p.suffix == ".mp4" or ".part" in p.name for p in tmp_path.iterdir())


# --- signals, in a real process ----------------------------------------------------------------------------


def _start(tmp_path: Path, *extra: str) -> tuple[subprocess.Popen, Path]:
    board = tmp_path / "long.yaml"
    board.write_text(story(duration="30s", second="10s"))
    out = tmp_path / "long.mp4"
    cmd = [
        sys.executable,
        "-c",
        "from longlive_cli.cli import main; main()",
        "generate",
        str(board),
        "-o",
        str(out),
    ]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([*cmd, *TINY, *extra], stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.monotonic() + 120
    for line in proc.stderr:  # plain progress lines: wait for the first finished blocks
        if line.startswith("block ") or time.monotonic() > deadline:
            break
    return proc, out


def _finish(proc: subprocess.Popen) -> tuple[int, str]:
    rest = proc.stderr.read()
    return proc.wait(timeout=120), rest


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, EXIT_SIGINT), (signal.SIGTERM, EXIT_SIGTERM)])
def test_interrupt_keeps_a_playable_partial_video_and_never_the_final_name(tmp_path, sig, code):
    proc, out = _start(tmp_path)
    proc.send_signal(sig)
    rc, stderr = _finish(proc)
    assert rc == code, stderr
    partial = tmp_path / "long.partial.mp4"
    assert not out.exists() and partial.exists(), stderr
    info = read_video_info(partial)
    assert info["frames"] >= 9 and (info["frames"] - 9) % 12 == 0 and info["frames"] < 477
    assert f"kept {partial}" in stderr
    assert not [p for p in tmp_path.iterdir() if ".part-" in p.name]


def test_second_ctrl_c_aborts_and_removes_everything(tmp_path):
    # Slow blocks (larger frames) leave time for the second Ctrl-C to land inside the same block.
    proc, _out = _start(tmp_path, "--resolution", "256x144")
    proc.send_signal(signal.SIGINT)
    for line in proc.stderr:  # the first Ctrl-C is acknowledged before the second is sent
        if "press Ctrl-C again" in line:
            break
    proc.send_signal(signal.SIGINT)
    rc, stderr = _finish(proc)
    assert rc == EXIT_SIGINT, stderr
    assert "aborted" in stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["long.yaml"]
