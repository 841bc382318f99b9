"""`longlive live` driven as a subprocess with the tiny preset on the CPU: prompts written into its standard
input at chosen moments, its JSON events read back."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import imageio_ffmpeg
import pytest
import torch

from longlive_cli.geometry import WAN21
from longlive_cli.latents import read_latents
from longlive_cli.live import LiveSchedule, PromptReader
from longlive_cli.video import read_video_info

TINY = ["--model", "tiny-random", "--device", "cpu", "--resolution", "64x48", "--seed", "7"]
CMD = [sys.executable, "-c", "from longlive_cli.cli import main; main()", "live"]
ENV = {**os.environ, "PYTHONUNBUFFERED": "1"}


class Live:
    """A running `longlive live` with JSON events on a file we follow."""

    def __init__(self, tmp: Path, *args: str, stdout=subprocess.DEVNULL, events: str = "events.jsonl"):
        self.events_path = tmp / events
        self.proc = subprocess.Popen(
            [*CMD, *TINY, "--events", str(self.events_path), *args],
            stdin=subprocess.PIPE,
            stdout=stdout,
            stderr=subprocess.PIPE,
            env=ENV,
        )
        self.events: list[dict] = []
        self._read = 0

    def send(self, line: str | bytes) -> None:
        data = line if isinstance(line, bytes) else line.encode()
        self.proc.stdin.write(data + b"\n")
        self.proc.stdin.flush()

    def poll_events(self) -> list[dict]:
        if self.events_path.exists():
            lines = self.events_path.read_text().splitlines()
            complete = lines if self.events_path.read_text().endswith("\n") else lines[:-1]
            self.events.extend(json.loads(x) for x in complete[self._read :])
            self._read = len(complete)
        return self.events

    def wait_for(self, pred, timeout: float = 120) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for e in self.poll_events():
                if pred(e):
                    return e
            assert self.proc.poll() is None or self.poll_events(), "live exited early"
            time.sleep(0.02)
        raise AssertionError(f"timed out; events: {self.events[-5:]}")

    def finish(self, timeout: float = 120) -> tuple[int, str]:
        if self.proc.stdin and not self.proc.stdin.closed:
            self.proc.stdin.close()
        stderr = self.proc.stderr.read().decode()
        code = self.proc.wait(timeout=timeout)
        self.poll_events()
        return code, stderr

    def of(self, kind: str) -> list[dict]:
        return [e for e in self.poll_events() if e["event"] == kind]


def test_a_prompt_lands_on_the_first_block_started_after_it_arrives_and_the_session_reproduces(tmp_path):
    rec = tmp_path / "s.mp4"
    live = Live(
        tmp_path, "-o", str(rec), "--duration", "6s", "--save-latents", str(tmp_path / "live.safetensors")
    )
    live.send("a lighthouse at dusk")
    live.wait_for(lambda e: e["event"] == "block_done" and e["block"] == 1)
    live.send(":pause")
    # Held: no block_done for three times the longest block so far, so the generator waits inside the
    # schedule before block last + 1 (a block takes from 0.2 s to seconds, as busy as the machine is).
    times = [e["elapsed_s"] for e in live.of("block_done")]
    window = max(1.0, 3 * max(b - a for a, b in itertools.pairwise(times)))
    count, since = -1, time.monotonic()
    while time.monotonic() - since < window:
        if count != len(live.of("block_done")):
            count, since = len(live.of("block_done")), time.monotonic()
        time.sleep(0.1)
    last_done = live.of("block_done")[-1]["block"]
    live.send("a lighthouse in a storm")
    live.send(":resume")
    code, stderr = live.finish()
    assert code == 0, stderr
    switches = live.of("prompt_switched")
    assert [(s["block"], s["text"]) for s in switches] == [(last_done + 1, "a lighthouse in a storm")]
    shown = live.of("prompt_shown")
    assert [s["block"] for s in shown] == [last_done + 1] and shown[0]["latency_s"] > 0
    summary = live.of("session_summary")[0]
    assert summary["switches"] == 1 and summary["latency_max_s"] == shown[0]["latency_s"]
    assert "paused" in stderr and "resumed" in stderr
    # The session storyboard reproduces the latents with `generate`, bit for bit.
    session = tmp_path / "s.yaml"
    assert session.exists()
    out, latents = str(tmp_path / "g.mp4"), str(tmp_path / "gen.safetensors")
    args = [
        "generate",
        str(session),
        "-o",
        out,
        "--model",
        "tiny-random",
        "--device",
        "cpu",
        "-q",
        "--save-latents",
        latents,
    ]
    gen = subprocess.run([*CMD[:-1], *args], capture_output=True, text=True, env=ENV)
    assert gen.returncode == 0, gen.stderr
    live_latents, gen_latents = (
        read_latents(tmp_path / "live.safetensors")[0],
        read_latents(tmp_path / "gen.safetensors")[0],
    )
    assert live_latents.shape[1] == 24 and torch.equal(live_latents, gen_latents)


def test_stream_on_stdout_decodes_to_the_recordings_frames(tmp_path):
    rec = tmp_path / "r.mp4"
    ts = tmp_path / "out.ts"
    with open(ts, "wb") as out:
        live = Live(tmp_path, "-o", str(rec), "--stream", "-", "--duration", "3s", stdout=out)
        live.send("a red fox in the snow")
        code, stderr = live.finish()
    assert code == 0, stderr
    frames = read_video_info(rec)["frames"]
    reader = imageio_ffmpeg.read_frames(str(ts))
    next(reader)
    assert frames == 45 and sum(1 for _ in reader) == frames


def test_realtime_stream_lasts_about_the_videos_duration(tmp_path):
    start = time.monotonic()
    live = Live(tmp_path, "--stream", str(tmp_path / "rt.ts"), "--realtime", "--duration", "3s")
    live.send("a red fox in the snow")
    code, stderr = live.finish()
    wall = time.monotonic() - start
    assert code == 0, stderr
    assert wall >= 45 / 16 * 0.9  # 45 frames at 16 fps leave no faster than real time
    reader = imageio_ffmpeg.read_frames(str(tmp_path / "rt.ts"))
    next(reader)
    assert sum(1 for _ in reader) == 45


def test_a_consumer_that_goes_away_stops_the_stream_not_the_recording(tmp_path):
    rec = tmp_path / "r.mp4"
    live = Live(tmp_path, "-o", str(rec), "--stream", "-", "--duration", "6s", stdout=subprocess.PIPE)
    live.send("a red fox in the snow")
    live.proc.stdout.read(188 * 4)  # a few MPEG-TS packets, then the player closes
    live.proc.stdout.close()
    code, stderr = live.finish()
    assert code == 0, stderr
    assert "Traceback" not in stderr and stderr.count("the consumer went away") == 1
    assert read_video_info(rec)["frames"] == 93 and len(live.of("stream_closed")) == 1


def test_bad_lines_cost_nothing(tmp_path):
    rec = tmp_path / "r.mp4"
    live = Live(tmp_path, "-o", str(rec), "--duration", "3s", "--prompt", "a red fox")
    for line in (b"", b"\xff\xfe broken", b"x" * 10_001, b":frobnicate", b":help"):
        live.send(line)
    code, stderr = live.finish()
    assert code == 0, stderr
    for needle in ("empty line", "not UTF-8", "10001 characters", "unknown command :frobnicate", ":quit ("):
        assert needle in stderr, needle
    assert "Traceback" not in stderr and read_video_info(rec)["frames"] == 45
    assert live.of("prompt_switched") == []


def test_eof_without_duration_finishes_with_it_continues(tmp_path):
    short = Live(tmp_path, "-o", str(tmp_path / "a.mp4"))
    short.send("a red fox")
    code, stderr = short.finish()  # EOF right away: finish after the current block
    assert code == 0, stderr
    frames = read_video_info(tmp_path / "a.mp4")["frames"]
    assert 9 <= frames < 957 and (tmp_path / "a.yaml").read_text().count("stopped at") == 1
    full = Live(tmp_path, "-o", str(tmp_path / "b.mp4"), "--duration", "4s", events="full.jsonl")
    full.send("a red fox")
    code, stderr = full.finish()
    assert code == 0, stderr
    assert read_video_info(tmp_path / "b.mp4")["frames"] == WAN21.video_frames(WAN21.latent_frames(4)) == 57


def test_ctrl_c_keeps_a_playable_partial_recording_and_the_session(tmp_path):
    live = Live(tmp_path, "-o", str(tmp_path / "c.mp4"), "--duration", "60s")
    live.send("a red fox")
    live.wait_for(lambda e: e["event"] == "block_done" and e["block"] >= 1)
    live.proc.send_signal(signal.SIGINT)
    code, stderr = live.finish()
    assert code == 130, stderr
    assert not (tmp_path / "c.mp4").exists() and (tmp_path / "c.partial.mp4").exists()
    assert read_video_info(tmp_path / "c.partial.mp4")["frames"] >= 9
    assert (tmp_path / "c.yaml").exists() and "Traceback" not in stderr


def test_needs_an_output_and_json_cannot_share_stdout_with_the_stream(tmp_path):
    for args, needle in (([], "needs -o"), (["--stream", "-", "--json"], "--events FILE")):
        proc = subprocess.run([*CMD, *TINY, *args], input=b"x\n", capture_output=True, env=ENV)
        assert proc.returncode == 2 and needle in proc.stderr.decode(), proc.stderr


@pytest.mark.parametrize("fifo", [True, False], ids=["fifo", "growing-file"])
def test_prompts_from_a_fifo_or_a_growing_file(tmp_path, fifo):
    schedule = LiveSchedule(lambda text: torch.zeros(1, 1, 4), 10, lambda: False)
    path = tmp_path / "prompts"
    if fifo:
        os.mkfifo(path)
    else:
        path.write_bytes(b"")
    reader = PromptReader(schedule, source=path).start()

    def writer() -> None:
        for text in ("first", "second"):  # two writers one after another (a FIFO is reopened)
            with open(path, "ab" if not fifo else "wb") as f:
                f.write(text.encode() + b"\n")
            time.sleep(0.3)

    thread = threading.Thread(target=writer)
    thread.start()
    assert schedule.wait_for_first(timeout=10) == "first"
    thread.join()
    deadline = time.monotonic() + 10
    while schedule.segment_for_block(1) != 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert schedule.text(1) == "second" and schedule.switch_blocks == [0, 1]
    schedule.finish()
    if fifo:  # unblock the reader's next open()
        with open(path, "wb"):
            pass
    reader._thread.join(timeout=5)
