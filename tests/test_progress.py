"""Tests for longlive_cli.progress: reporter choice, plain/quiet/rich output, summary formatting."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from rich.console import Console

from longlive_cli.events import BlockDone, Finished, GenerationStarted, PromptSwitched
from longlive_cli.progress import (
    PlainReporter,
    ProgressReporter,
    QuietReporter,
    RichReporter,
    format_duration,
    make_reporter,
    summary_line,
)

FPS = 16
FRAMES_PER_BLOCK = 12  # video frames per block, for the synthetic run
NUM_BLOCKS = 10
NUM_FRAMES = NUM_BLOCKS * FRAMES_PER_BLOCK  # 120 frames = 7.5 s


class FakeClock:
    """Wall clock under test control."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class TTYStringIO(io.StringIO):
    """A StringIO that claims to be a terminal."""

    def isatty(self) -> bool:
        return True


def started() -> GenerationStarted:
    return GenerationStarted(
        num_blocks=NUM_BLOCKS,
        frames_per_block=3,
        num_video_frames=NUM_FRAMES,
        fps=FPS,
        duration_s=NUM_FRAMES / FPS,
        first_prompt="A boy stands in a field",
    )


def block(i: int, elapsed_s: float) -> BlockDone:
    return BlockDone(
        block=i,
        num_blocks=NUM_BLOCKS,
        video_frames_done=(i + 1) * FRAMES_PER_BLOCK,
        num_video_frames=NUM_FRAMES,
        fps=FPS,
        elapsed_s=elapsed_s,
    )


def finished(wall_s: float = 12.0) -> Finished:
    return Finished(
        path=Path("out.mp4"), num_video_frames=NUM_FRAMES, duration_s=NUM_FRAMES / FPS, wall_s=wall_s
    )


def run_plain(step_s: float, min_interval_s: float = 1.0) -> list[str]:
    """Feed a full run to a PlainReporter whose clock advances ``step_s`` per block."""
    out = io.StringIO()
    clock = FakeClock()
    switch = PromptSwitched(block=5, segment=1, text="The boy starts to run", time_s=3.75)
    with PlainReporter(out, min_interval_s=min_interval_s, clock=clock) as rep:
        rep.handle(started())
        for i in range(NUM_BLOCKS):
            if i == switch.block:
                rep.handle(switch)
            clock.now += step_s
            rep.handle(block(i, elapsed_s=(i + 1) * 1.2))
        rep.handle(finished())
    text = out.getvalue()
    assert "\x1b" not in text
    assert "\r" not in text
    assert text.endswith("\n")
    return text.splitlines()


def block_lines(lines: list[str]) -> list[str]:
    return [line for line in lines if line.startswith("block ")]


# --------------------------------------------------------------------------- formatting


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [
        (0, "0:00"),
        (5.4, "0:05"),
        (59.6, "1:00"),
        (95, "1:35"),
        (3599.4, "59:59"),
        (3600, "1:00:00"),
        (3 * 3600 + 7 * 60 + 9, "3:07:09"),
        (-3, "0:00"),
        (float("inf"), "--:--"),
        (float("nan"), "--:--"),
    ],
)
def test_format_duration(seconds: float, expected: str) -> None:
    assert format_duration(seconds) == expected


def test_summary_line() -> None:
    event = Finished(path=Path("out.mp4"), num_video_frames=957, duration_s=59.8125, wall_s=95.0)
    assert summary_line(event) == "Wrote out.mp4 — 59.81 s of video, 957 frames in 1:35 (10.1 fps)"


def test_summary_line_long_run_and_zero_wall_time() -> None:
    long = Finished(path=Path("dir/long.mp4"), num_video_frames=57600, duration_s=3600.0, wall_s=4000.0)
    assert summary_line(long) == "Wrote dir/long.mp4 — 3600.00 s of video, 57600 frames in 1:06:40 (14.4 fps)"
    instant = Finished(path=Path("x.mp4"), num_video_frames=10, duration_s=0.625, wall_s=0.0)
    assert summary_line(instant).endswith("in 0:00 (-- fps)")


# --------------------------------------------------------------------------- plain reporter


def test_plain_reporter_lines() -> None:
    # Slow blocks (2 s apart): nothing is rate-limited away.
    lines = run_plain(step_s=2.0)
    assert lines[0] == "generating 7.50 s of video: 120 frames at 16 fps in 10 blocks"
    assert lines[1] == "prompt 1 at 0.00 s: A boy stands in a field"
    assert "prompt 2 at 3.75 s: The boy starts to run" in lines
    # Block 3 (0-based 2): 36 frames in 3.6 s -> 10.0 fps; 84 frames left -> 8.4 s.
    assert "block 3/10  video 2.25/7.50 s  10.0 fps  eta 0:08" in lines
    assert lines[-2] == "block 10/10  video 7.50/7.50 s  10.0 fps  eta 0:00"
    assert lines[-1] == "Wrote out.mp4 — 7.50 s of video, 120 frames in 0:12 (10.0 fps)"
    assert len(block_lines(lines)) == NUM_BLOCKS
    # The prompt switch is reported in order, before the block it first applies to.
    assert lines.index("prompt 2 at 3.75 s: The boy starts to run") < lines.index(
        "block 6/10  video 4.50/7.50 s  10.0 fps  eta 0:05"
    )


def test_plain_reporter_rate_limits_block_lines() -> None:
    # Blocks 0.3 s apart with a 1 s limit: first block, then roughly one in four, plus the last.
    lines = run_plain(step_s=0.3)
    blocks = block_lines(lines)
    assert [line.split()[1] for line in blocks] == ["1/10", "5/10", "9/10", "10/10"]
    # Prompt switches and the summary are never rate-limited.
    assert "prompt 2 at 3.75 s: The boy starts to run" in lines
    assert lines[-1].startswith("Wrote out.mp4")


def test_plain_reporter_always_prints_last_block() -> None:
    # All blocks at the same instant: only the first and the last get a line.
    blocks = block_lines(run_plain(step_s=0.0))
    assert [line.split()[1] for line in blocks] == ["1/10", "10/10"]


def test_plain_reporter_zero_elapsed_and_flushes_each_line() -> None:
    class CountingIO(io.StringIO):
        flushes = 0

        def flush(self) -> None:
            self.flushes += 1
            super().flush()

    out = CountingIO()
    rep = PlainReporter(out, clock=FakeClock())
    rep.handle(block(0, elapsed_s=0.0))
    assert out.getvalue() == "block 1/10  video 0.75/7.50 s  -- fps  eta --:--\n"
    assert out.flushes == 1


def test_plain_reporter_sanitises_prompts() -> None:
    out = io.StringIO()
    rep = PlainReporter(out)
    rep.handle(PromptSwitched(block=2, segment=1, text="line one\n  line\x1b[31m two\r", time_s=1.5))
    assert out.getvalue() == "prompt 2 at 1.50 s: line one line [31m two\n"


def test_plain_reporter_does_not_repeat_first_prompt() -> None:
    out = io.StringIO()
    rep = PlainReporter(out)
    rep.handle(started())
    rep.handle(PromptSwitched(block=0, segment=0, text="A boy stands in a field", time_s=0.0))
    assert out.getvalue().count("prompt 1") == 1


# --------------------------------------------------------------------------- quiet reporter


def test_quiet_reporter_prints_only_summary() -> None:
    out = io.StringIO()
    with QuietReporter(out) as rep:
        rep.handle(started())
        rep.handle(PromptSwitched(block=5, segment=1, text="The boy starts to run", time_s=3.75))
        for i in range(NUM_BLOCKS):
            rep.handle(block(i, elapsed_s=(i + 1) * 1.2))
        rep.handle(finished())
    assert out.getvalue() == summary_line(finished()) + "\n"


# --------------------------------------------------------------------------- reporter choice


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm-256color")
    return monkeypatch


def test_make_reporter_plain_for_non_tty(clean_env: pytest.MonkeyPatch) -> None:
    assert isinstance(make_reporter(stream=io.StringIO()), PlainReporter)


def test_make_reporter_rich_for_tty(clean_env: pytest.MonkeyPatch) -> None:
    rep = make_reporter(stream=TTYStringIO())
    assert isinstance(rep, RichReporter)
    assert isinstance(rep, ProgressReporter)


def test_make_reporter_plain_when_no_color(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("NO_COLOR", "1")
    assert isinstance(make_reporter(stream=TTYStringIO()), PlainReporter)


def test_make_reporter_plain_for_dumb_terminal(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("TERM", "dumb")
    assert isinstance(make_reporter(stream=TTYStringIO()), PlainReporter)


def test_make_reporter_force_plain(clean_env: pytest.MonkeyPatch) -> None:
    assert isinstance(make_reporter(stream=TTYStringIO(), force_plain=True), PlainReporter)


def test_make_reporter_quiet_wins(clean_env: pytest.MonkeyPatch) -> None:
    assert isinstance(make_reporter(stream=TTYStringIO(), quiet=True), QuietReporter)
    assert isinstance(make_reporter(stream=io.StringIO(), quiet=True), QuietReporter)


def test_make_reporter_defaults_to_stderr(
    clean_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    rep = make_reporter(quiet=True)
    rep.handle(finished())
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("Wrote out.mp4")


# --------------------------------------------------------------------------- rich reporter


@pytest.mark.parametrize("terminal", [True, False])
def test_rich_reporter_full_run(terminal: bool) -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=terminal, width=140, color_system=None)
    long_prompt = "A [bold] boy [/nope] " + "runs through tall grass " * 5
    with RichReporter(console=console) as rep:
        rep.handle(started())
        for i in range(NUM_BLOCKS):
            if i == 5:
                rep.handle(PromptSwitched(block=5, segment=1, text=long_prompt, time_s=3.75))
            rep.handle(block(i, elapsed_s=(i + 1) * 1.2))
        rep.handle(finished())
    text = out.getvalue()
    assert summary_line(finished()) in text
    assert "10/10" in text
    assert "7.5/7.5 s" in text
    assert "10.0 fps" in text
    # The prompt is shown literally (no markup parsing) and truncated.
    assert "A [bold] boy [/nope]" in text
    assert long_prompt.strip() not in text
    # The final bar stays on screen above the summary.
    assert text.rindex("10/10") < text.rindex("Wrote out.mp4")


def test_rich_reporter_survives_exception_exit() -> None:
    console = Console(file=io.StringIO(), force_terminal=True, width=100)
    with pytest.raises(RuntimeError), RichReporter(console=console) as rep:  # noqa: PT012 (exit on an error)
        rep.handle(started())
        raise RuntimeError("boom")
    assert not rep.progress.live.is_started
