"""`longlive live`'s input side in process (issue 20): the prompt reader (select/os.read, lines kept until
their newline, stoppable, `tail -f` by default), the schedule under bursts (only prompts that can be shown are
encoded), the checks made before loading, printing user text, and the help."""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from longlive_cli.cli import app
from longlive_cli.errors import InputError, OutputError
from longlive_cli.events import PromptSuperseded
from longlive_cli.geometry import WAN21
from longlive_cli.live import LiveOptions, LiveSchedule, PromptReader, check_options
from longlive_cli.storyboard import StoryboardError
from longlive_cli.terminal import printable


class CountingEncoder:
    """An encoder that records the prompts it was asked for (slow enough that a burst queues behind it)."""

    def __init__(self, delay: float = 0.05) -> None:
        self.texts: list[str] = []
        self.delay = delay

    def __call__(self, text: str) -> torch.Tensor:
        self.texts.append(text)
        time.sleep(self.delay)
        return torch.zeros(1, 1, 4)


def _wait(pred, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.01)
    return False


# --------------------------------------------------------------------------- item 5: bursts
def test_a_burst_of_lines_encodes_only_the_prompts_that_can_be_shown():
    encoder = CountingEncoder(delay=0)
    busy = threading.Event()  # the worker is busy with the first prompt while the burst arrives
    schedule = LiveSchedule(lambda text: busy.wait(10) and encoder(text), 10, lambda: False)
    schedule.submit("first")
    assert schedule.wait_for_first(timeout=1) == "first"
    for i in range(2000):
        schedule.submit(f"line {i}")
    busy.set()
    assert schedule.segment_for_block(1) == 1 and schedule.text(1) == "line 1999"
    assert torch.equal(schedule.embedding(1), torch.zeros(1, 1, 4))
    schedule.close()
    assert encoder.texts == ["first", "line 1999"]  # was: all 2001 encoded (and cached)
    superseded = [e for e in schedule.side_events if isinstance(e, PromptSuperseded)]
    assert len(superseded) == 1 and superseded[0].count == 1999 and superseded[0].text == "line 1998"


def test_lines_before_the_first_block_keep_the_first_and_the_newest():
    encoder = CountingEncoder(delay=0)
    schedule = LiveSchedule(None, 10, lambda: False)  # the model is still loading
    for text in ("a", "b", "c", "d"):
        schedule.submit(text)
    assert encoder.texts == []  # nothing encoded before the encoder is attached
    schedule.attach_encoder(encoder)
    assert schedule.wait_for_first(timeout=1) == "a"
    assert schedule.segment_for_block(1) == 1 and schedule.text(1) == "d"
    assert schedule.segment_for_block(2) == 1  # "b" and "c" never come back
    schedule.embedding(1)
    assert sorted(encoder.texts) == ["a", "d"]
    schedule.close()


def test_a_transition_longer_than_the_session_is_refused_and_a_waiting_prompt_is_told(caplog):
    schedule = LiveSchedule(CountingEncoder(delay=0), 8, lambda: False)
    reader = PromptReader(schedule)
    caplog.set_level(logging.INFO, logger="longlive_cli")
    reader.handle(b":transition 999999s")
    assert schedule.next_transition is None and "longer than the session" in caplog.text
    reader.handle(b"first")
    schedule.wait_for_first(timeout=1)
    reader.handle(b":transition 2s")
    reader.handle(b"second")
    assert schedule.segment_for_block(1) == 1  # blends in over blocks 1-3
    reader.handle(b"third")
    assert "waits for the transition in progress to end" in caplog.text
    assert schedule.segment_for_block(2) == 1 and schedule.segment_for_block(4) == 2
    schedule.close()


# --------------------------------------------------------------------------- item 7: after the end
def test_a_line_after_the_session_closed_is_ignored_not_a_traceback(caplog):
    schedule = LiveSchedule(CountingEncoder(delay=0), 4, lambda: False)
    reader = PromptReader(schedule)
    reader.handle(b"first")
    schedule.wait_for_first(timeout=1)
    schedule.close()
    caplog.set_level(logging.INFO, logger="longlive_cli")
    reader.handle(b"too late")  # was: RuntimeError: cannot schedule new futures after shutdown
    assert "came after it" in caplog.text


def test_a_prompt_typed_while_paused_is_echoed_at_once(caplog):
    schedule = LiveSchedule(CountingEncoder(delay=0), 4, lambda: False)
    reader = PromptReader(schedule)
    caplog.set_level(logging.INFO, logger="longlive_cli")
    reader.handle(b":pause")
    reader.handle(b"while paused")
    assert "received while paused" in caplog.text and "while paused" in caplog.text


# --------------------------------------------------------------------------- items 1, 2, 8: the reader
def test_the_reader_stops_promptly_while_its_pipe_stays_open():
    r, w = os.pipe()
    try:
        schedule = LiveSchedule(CountingEncoder(delay=0), 4, lambda: False)
        with os.fdopen(r, "rb", buffering=0) as stdin:
            reader = PromptReader(schedule, stdin=stdin, end_on_eof=False).start()
            os.write(w, b"a red kite\n")
            assert schedule.wait_for_first(timeout=5) == "a red kite"
            start = time.monotonic()
            reader.stop()
            assert not reader._thread.is_alive() and time.monotonic() - start < 1.0
    finally:
        os.close(w)


def test_end_of_input_or_a_stop_ends_the_wait_for_a_first_prompt():
    r, w = os.pipe()
    os.close(w)  # EOF at once
    schedule = LiveSchedule(None, 4, lambda: False)
    with os.fdopen(r, "rb", buffering=0) as stdin:
        PromptReader(schedule, stdin=stdin, end_on_eof=False).start()
        start = time.monotonic()
        assert schedule.wait_for_first() is None and time.monotonic() - start < 2
    stop = threading.Event()
    waiting = LiveSchedule(None, 4, stop.is_set)
    threading.Timer(0.3, stop.set).start()
    assert waiting.wait_for_first() is None  # Ctrl-C / SIGTERM end the wait


@pytest.mark.parametrize("from_start", [False, True], ids=["tail", "from-start"])
def test_a_growing_file_is_followed_from_its_end_and_a_line_in_two_writes_is_one_prompt(tmp_path, from_start):
    path = tmp_path / "prompts.txt"
    path.write_bytes(b"old line\n")
    schedule = LiveSchedule(CountingEncoder(delay=0), 10, lambda: False)
    reader = PromptReader(schedule, source=path, from_start=from_start).start()
    time.sleep(0.3)
    with open(path, "ab") as f:
        f.write(b"a lighthouse ")
        f.flush()
        time.sleep(0.4)  # the reader sees half a line; it waits for the newline
        f.write(b"at dusk\n")
    assert schedule.wait_for_first(timeout=5) == ("old line" if from_start else "a lighthouse at dusk")
    if from_start:
        assert _wait(lambda: schedule.segment_for_block(1) == 1)
        assert schedule.text(1) == "a lighthouse at dusk"
    reader.stop()
    assert not reader._thread.is_alive()


def test_a_line_far_past_the_limit_is_dropped_with_one_message(caplog):
    r, w = os.pipe()
    schedule = LiveSchedule(CountingEncoder(delay=0), 4, lambda: False)
    caplog.set_level(logging.INFO, logger="longlive_cli")
    with os.fdopen(r, "rb", buffering=0) as stdin:
        reader = PromptReader(schedule, stdin=stdin, end_on_eof=False).start()
        os.write(w, b"y" * 100_000)  # no newline yet: not kept whole in memory
        os.write(w, b"\nshort one\n")
        assert schedule.wait_for_first(timeout=5) == "short one"
        reader.stop()
    os.close(w)
    assert caplog.text.count("ignored a line of over") == 1


# --------------------------------------------------------------------------- items 3, 9, 10: before loading
def _opts(tmp_path: Path, **kw) -> LiveOptions:
    return LiveOptions(**{"recording": tmp_path / "s.mp4", **kw})


@pytest.mark.parametrize(
    ("kw", "error", "needle"),
    [
        ({"resolution": "65x48"}, StoryboardError, "--resolution"),
        ({"duration": "-3s"}, StoryboardError, "--duration"),
        ({"prompts_from": Path("missing")}, InputError, "no such file or FIFO"),
        ({"prompts_from": Path(".")}, InputError, "is a folder"),
        ({"recording": Path("s.yaml")}, InputError, "same file"),
        ({"save_session": Path("nowhere/s.yaml")}, OutputError, "does not exist"),
    ],
)
def test_options_are_checked_before_anything_is_loaded(tmp_path, monkeypatch, kw, error, needle):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(error, match=needle):
        check_options(_opts(tmp_path, **kw), WAN21)


def test_existing_outputs_are_refused_without_force(tmp_path):
    for name in ("s.mp4", "s.yaml", "out.ts", "events.jsonl"):
        (tmp_path / name).write_text("keep me")
    outputs = {"--events": tmp_path / "events.jsonl"}
    for opts in (
        _opts(tmp_path),
        _opts(tmp_path, recording=None, stream=str(tmp_path / "out.ts"), save_session=tmp_path / "x.yaml"),
    ):
        with pytest.raises(OutputError, match="already exists"):
            check_options(opts, WAN21, outputs=outputs)
    with pytest.raises(OutputError, match="does not exist"):
        check_options(_opts(tmp_path / "n"), WAN21, outputs={"--events": tmp_path / "no" / "e.jsonl"})
    assert all((tmp_path / n).read_text() == "keep me" for n in ("s.mp4", "s.yaml", "out.ts", "events.jsonl"))
    check_options(_opts(tmp_path, force=True, stream=str(tmp_path / "out.ts")), WAN21, outputs=outputs)


# --------------------------------------------------------------------------- item 12, 13: printing
def test_control_characters_are_escaped_when_printed_and_kept_elsewhere():
    assert printable("a \x1b]0;pwned\x07 b \x1b[2J \x00 \u202e c 🦊 é") == (
        "a \\x1b]0;pwned\\x07 b \\x1b[2J \\x00 \\u202e c 🦊 é"
    )
    assert printable("line 1\nline 2", newlines=True) == "line 1\nline 2"
    assert printable("plain [text]") == "plain [text]"


def test_help_keeps_brackets_names_values_and_lists_the_live_commands():
    runner = CliRunner()
    wide = {"COLUMNS": "240"}
    live = runner.invoke(app, ["live", "--help"], env=wide).output
    generate = runner.invoke(app, ["generate", "--help"], env=wide).output
    assert ":transition 2s" in live and ":pause" in live and "130/143" in live
    assert "[default: the model's native]" in live and "overrides the storyboards" not in live
    assert "(one storyboard)" not in live and "--from-start" in live
    assert "[auto: bf16 on CUDA, float32 on CPU]" in generate
    assert "<bool>" not in live and "<bool>" not in generate and "<str>" not in live


def test_a_session_storyboard_that_cannot_be_written_is_not_named_in_the_summary(tmp_path, caplog):
    from types import SimpleNamespace

    from longlive_cli.live import LiveSession
    from longlive_cli.plans import plan_storyboard

    (tmp_path / "a-file").write_text("")
    plan = plan_storyboard({"duration": 1, "prompts": [{"at": 0, "text": "x"}]}, WAN21, seed=1)
    schedule = LiveSchedule(CountingEncoder(delay=0), plan.num_blocks, lambda: False)
    ll = SimpleNamespace(geometry=WAN21, text_encoder_bytes=0)
    bad = tmp_path / "a-file" / "s.yaml"  # its folder is a file: no one can write there, root neither
    session = LiveSession(ll, plan, recording=None, sinks=[], session_path=bad, schedule=schedule)
    session.save_session()
    assert session.summary(None).session_path is None and "cannot write the session storyboard" in caplog.text
    good = LiveSession(
        ll, plan, recording=None, sinks=[], session_path=tmp_path / "s.yaml", schedule=schedule
    )
    good.save_session()
    assert good.summary(None).session_path == tmp_path / "s.yaml"
