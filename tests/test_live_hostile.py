"""The hostile-live corpus (issue 20): `longlive live` run as a subprocess on tiny-random at 64x48 and fed
what a hostile user or a broken pipe gives it: no first prompt, bad options, existing outputs, a
20,000-character line, NUL / ANSI / emoji lines, thousands of lines at once, lines after the end, EOF
mid-line, SIGINT and SIGTERM before the first prompt, during loading, generation and finalisation, a
second Ctrl-C, a stream target that fails. Every case ends with its documented exit code
(docs/live-input.md), no traceback, no hang (each run has a hard deadline and is killed past it) and no
stray file (a recording is whole or absent, never a ``.part`` file).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml

from longlive_cli.video import read_video_info

BASE = ["--model", "tiny-random", "--device", "cpu", "--resolution", "64x48", "--seed", "7"]
CMD = [sys.executable, "-c", "from longlive_cli.cli import main; main()", "live"]
DEADLINE_S = 120


class Session:
    """A `longlive live` subprocess with its standard error collected line by line as it comes."""

    def __init__(self, tmp: Path, *args: str, stdin=subprocess.PIPE) -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "LONGLIVE_CACHE": str(tmp / "cache")}
        self.tmp = tmp
        self.proc = subprocess.Popen(
            [*CMD, *BASE, *args],
            stdin=stdin,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env=env,
            cwd=tmp,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._collect, daemon=True)
        self._reader.start()
        self.started = time.monotonic()

    def _collect(self) -> None:
        assert self.proc.stderr is not None
        for raw in iter(self.proc.stderr.readline, b""):
            self.lines.append(raw.decode("utf-8", "replace"))

    @property
    def stderr(self) -> str:
        return "".join(self.lines)

    def send(self, data: bytes) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def wait_for(self, needle: str, timeout: float = DEADLINE_S) -> None:
        deadline = time.monotonic() + timeout
        while needle not in self.stderr:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.kill()
                raise AssertionError(f"{needle!r} never came; stderr:\n{self.stderr}")
            time.sleep(0.02)

    def wait_for_event(self, events: Path, pred, timeout: float = DEADLINE_S) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if events.exists():
                for line in events.read_text().splitlines():
                    if line.endswith("}") and pred(json.loads(line)):
                        return
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.kill()
                raise AssertionError(f"the event never came; stderr:\n{self.stderr}")
            time.sleep(0.02)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def finish(self, *, close_stdin: bool = True, timeout: float = DEADLINE_S) -> tuple[int, str]:
        """Wait (bounded) for the exit; (exit code, stderr). A run past the deadline is killed and fails."""
        if close_stdin and self.proc.stdin and not self.proc.stdin.closed:
            self.proc.stdin.close()
        try:
            code = self.proc.wait(timeout=max(1.0, timeout - (time.monotonic() - self.started)))
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"live hung; stderr:\n{self.stderr}") from None
        self._reader.join(5)
        if self.proc.stdin and not self.proc.stdin.closed:
            self.proc.stdin.close()
        stderr = self.stderr
        assert "Traceback" not in stderr and "Fatal Python error" not in stderr, stderr
        return code, stderr


def no_stray_files(folder: Path) -> None:
    strays = [p.name for p in folder.iterdir() if ".part-" in p.name]
    assert not strays, strays


# --------------------------------------------------------------------------- item 1
def test_a_session_ends_at_its_duration_while_stdin_stays_open(tmp_path):
    # The before-stop smoke test: (echo "a red kite over a field"; sleep 15) | longlive live ... --duration 1s
    live = Session(tmp_path, "--duration", "1s", "-o", "s.mp4")
    live.send(b"a red kite over a field\n")
    deadline = time.monotonic() + DEADLINE_S
    while live.proc.poll() is None and time.monotonic() < deadline:  # stdin is still open all along
        time.sleep(0.05)
    code, stderr = live.finish()
    assert code == 0, stderr
    assert read_video_info(tmp_path / "s.mp4")["frames"] == 9
    no_stray_files(tmp_path)


# ------------------------------------------------------------------ items 2, 3, 9, 10: before loading
def _prepare(tmp: Path, case: str) -> tuple[list[str], int, str]:
    """The arguments of a case that must fail before loading, its exit code and a word of its message."""
    keep = b"keep me"
    if case == "stdin-is-dev-null":
        return ["-o", "s.mp4"], 2, "ended before a first prompt"
    if case == "prompts-from-missing":
        return ["-o", "s.mp4", "--prompts-from", "nope.txt"], 2, "no such file or FIFO"
    if case == "prompts-from-a-folder":
        return ["-o", "s.mp4", "--prompts-from", "."], 2, "is a folder"
    if case == "recording-exists":
        (tmp / "s.mp4").write_bytes(keep)
        return ["-o", "s.mp4"], 4, "already exists"
    if case == "stream-file-exists":
        (tmp / "out.ts").write_bytes(keep)
        return ["--stream", "out.ts"], 4, "already exists"
    if case == "events-file-exists":
        (tmp / "e.jsonl").write_bytes(keep)
        return ["-o", "s.mp4", "--events", "e.jsonl"], 4, "already exists"
    if case == "events-folder-missing":
        return ["-o", "s.mp4", "--events", "no/e.jsonl"], 4, "does not exist"
    if case == "session-storyboard-exists":
        (tmp / "s.yaml").write_bytes(keep)
        return ["-o", "s.mp4"], 4, "already exists"
    if case == "save-session-folder-missing":
        return ["-o", "s.mp4", "--save-session", "no/s.yaml"], 4, "does not exist"
    if case == "recording-is-the-session-storyboard":
        return ["-o", "s.yaml", "--force"], 2, "same file"
    if case == "resolution-65x48":
        return ["-o", "s.mp4", "--resolution", "65x48"], 2, "--resolution"
    assert case == "duration-negative"
    return ["-o", "s.mp4", "--duration", "-3s"], 2, "--duration"


@pytest.mark.parametrize(
    "case",
    [
        "stdin-is-dev-null",
        "prompts-from-missing",
        "prompts-from-a-folder",
        "recording-exists",
        "stream-file-exists",
        "events-file-exists",
        "events-folder-missing",
        "session-storyboard-exists",
        "save-session-folder-missing",
        "recording-is-the-session-storyboard",
        "resolution-65x48",
        "duration-negative",
    ],
)
def test_a_bad_start_fails_before_loading_with_its_exit_code_and_touches_nothing(tmp_path, case):
    args, code_wanted, needle = _prepare(tmp_path, case)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()}
    with open(os.devnull, "rb") as devnull:
        live = Session(tmp_path, *args, stdin=devnull if case == "stdin-is-dev-null" else subprocess.PIPE)
        if case != "stdin-is-dev-null":
            live.send(b"a prompt that never gets used\n")
        code, stderr = live.finish(close_stdin=False)
    assert code == code_wanted, stderr
    assert needle in stderr and "loaded the video model" not in stderr, stderr
    after = {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()}
    assert after == before  # nothing created, nothing overwritten


# --------------------------------------------------------------------------- items 5, 12: hostile lines
def test_hostile_lines_are_refused_or_escaped_and_a_burst_costs_one_encoding(tmp_path):
    events = tmp_path / "e.jsonl"
    live = Session(
        tmp_path, "--duration", "3s", "-o", "s.mp4", "--prompt", "a red fox", "--events", str(events)
    )
    live.send(b":pause\n")  # hold block 0 until everything below has arrived
    live.send(b"x" * 20_000 + b"\n")
    live.send(b"a nul \x00 in the middle\n")
    live.send(b"an ansi \x1b[2J\x1b]0;pwned\x07 title\n")
    live.send(b":transition 999999s\n")
    live.send(b"".join(b"burst line %d\n" % i for i in range(3000)))
    live.send(b"the end \xf0\x9f\xa6\x8a ")  # a line in two writes is one prompt
    time.sleep(0.3)
    live.send(b"\x1b[31m red\n")
    live.wait_for("received: the end")
    live.send(b":resume\n")
    code, stderr = live.finish()
    assert code == 0, stderr
    assert "\x1b" not in stderr and "\x00" not in stderr, "control characters reached the terminal"
    assert "received: an ansi \\x1b[2J\\x1b]0;pwned\\x07 title" in stderr
    assert "ignored a prompt of 20000 characters" in stderr and "longer than the session" in stderr
    assert stderr.count("superseded before it was shown") == 1, stderr
    assert "peak RAM 0 B" not in stderr
    last = "the end 🦊 \x1b[31m red"
    session = yaml.safe_load((tmp_path / "s.yaml").read_text(encoding="utf-8"))
    assert [p["text"] for p in session["prompts"]] == ["a red fox", last]  # raw text kept in data
    assert read_video_info(tmp_path / "s.mp4")["frames"] == 45
    cached = list((tmp_path / "cache").rglob("*.safetensors"))
    assert len(cached) <= 3, cached  # the first prompt, the last one; the burst was never encoded


# --------------------------------------------------------------------------- items 2, 8: EOF
def test_eof_in_the_middle_of_a_line_makes_it_the_prompt_and_ends_the_session(tmp_path):
    live = Session(tmp_path, "-o", "s.mp4")
    live.send(b"a lighthouse at dusk")  # no newline, then EOF
    code, stderr = live.finish()
    assert code == 0, stderr
    session = yaml.safe_load((tmp_path / "s.yaml").read_text())
    assert session["prompts"][0]["text"] == "a lighthouse at dusk"
    assert read_video_info(tmp_path / "s.mp4")["frames"] >= 9
    no_stray_files(tmp_path)


# --------------------------------------------------------------------------- item 7
def test_lines_that_keep_coming_after_the_video_is_finished_are_no_traceback(tmp_path):
    live = Session(tmp_path, "--duration", "2s", "-o", "s.mp4")
    live.send(b"a red fox\n")

    def keep_typing() -> None:
        i = 0
        while live.proc.poll() is None:
            try:
                live.send(b"more %d\n" % i)
            except (BrokenPipeError, ValueError):
                return
            i += 1
            time.sleep(0.02)

    typist = threading.Thread(target=keep_typing, daemon=True)
    typist.start()
    code, stderr = live.finish(close_stdin=False)
    typist.join(5)
    assert code == 0, stderr
    assert read_video_info(tmp_path / "s.mp4")["frames"] == 33


# --------------------------------------------------------------------------- signals at every phase
def test_sigterm_while_waiting_for_the_first_prompt(tmp_path):
    live = Session(tmp_path, "-o", "s.mp4")
    live.wait_for("type the first prompt")
    live.proc.send_signal(signal.SIGTERM)
    code, stderr = live.finish(close_stdin=False)
    assert code == 143, stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache"] or not (tmp_path / "s.mp4").exists()
    assert not (tmp_path / "s.yaml").exists()
    no_stray_files(tmp_path)


def test_sigint_during_loading_stops_before_generating(tmp_path):
    live = Session(tmp_path, "-o", "s.mp4")
    live.send(b"a red fox\n")
    live.wait_for("precision:")  # printed as loading starts
    live.proc.send_signal(signal.SIGINT)
    code, stderr = live.finish(close_stdin=False)
    assert code == 130, stderr
    assert "generating" not in stderr and not (tmp_path / "s.mp4").exists()
    no_stray_files(tmp_path)


def test_sigterm_during_generation_keeps_a_playable_partial(tmp_path):
    events = tmp_path / "e.jsonl"
    live = Session(tmp_path, "--duration", "60s", "-o", "c.mp4", "--events", str(events))
    live.send(b"a red fox\n")
    live.wait_for_event(events, lambda e: e["event"] == "block_done")
    live.proc.send_signal(signal.SIGTERM)
    code, stderr = live.finish(close_stdin=False)
    assert code == 143, stderr
    assert not (tmp_path / "c.mp4").exists() and read_video_info(tmp_path / "c.partial.mp4")["frames"] >= 9
    no_stray_files(tmp_path)


def test_sigint_during_finalisation_keeps_the_whole_video(tmp_path):
    events = tmp_path / "e.jsonl"
    live = Session(tmp_path, "--duration", "2s", "-o", "s.mp4", "--events", str(events))
    live.send(b"a red fox\n")
    live.wait_for_event(events, lambda e: e["event"] == "block_done" and e["block"] == e["num_blocks"] - 1)
    running = live.proc.poll() is None
    if running:
        live.proc.send_signal(signal.SIGINT)
    code, stderr = live.finish(close_stdin=False)
    assert code == (130 if running else 0), stderr
    assert read_video_info(tmp_path / "s.mp4")["frames"] == 33  # the video was complete: kept whole
    no_stray_files(tmp_path)


def test_a_second_ctrl_c_aborts_at_once_and_leaves_nothing(tmp_path):
    events = tmp_path / "e.jsonl"
    live = Session(tmp_path, "--duration", "60s", "-o", "a.mp4", "--events", str(events))
    live.send(b"a red fox\n")
    live.wait_for_event(events, lambda e: e["event"] == "block_done")
    live.proc.send_signal(signal.SIGINT)
    live.proc.send_signal(signal.SIGINT)
    code, stderr = live.finish(close_stdin=False)
    assert code == 130, stderr
    assert not (tmp_path / "a.mp4").exists()
    kinds = [json.loads(x)["event"] for x in events.read_text().splitlines()]
    assert kinds[-1] in ("aborted", "session_summary"), kinds  # the abort may land after the last block
    no_stray_files(tmp_path)


# --------------------------------------------------------------------------- item 6
def test_a_stream_that_fails_with_nothing_recorded_is_an_error_in_ffmpegs_words(tmp_path):
    live = Session(tmp_path, "--duration", "2s", "--stream", "rtmp://127.0.0.1:1/live")
    live.send(b"a red fox\n")
    code, stderr = live.finish()
    assert code == 4, stderr
    assert "Connection refused" in stderr and "Streamed" not in stderr and "recording goes on" not in stderr


# --------------------------------------------------------------------------- Ctrl-C at start-up
EARLY_SIGINT = """
import builtins, os, signal, sys
import typer

def interrupt(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGINT)  # handled at the next bytecode: inside the patched call

moment = sys.argv[1]
sys.argv = ["longlive", "live", *sys.argv[2:]]
if moment == "import":  # while the console script imports the CLI (Typer, Rich, the registry)
    real_import = builtins.__import__
    def patched(name, *args, **kwargs):
        if name == "cli":
            interrupt()
        return real_import(name, *args, **kwargs)
    builtins.__import__ = patched
    from longlive_cli.entry import run_cli
    run_cli()
    sys.exit(0)
from longlive_cli import cli
if moment == "parsing":  # while Click reads the command line, before the command starts
    context = typer.main.get_command(cli.app).context_class  # Typer's own copy of Click's
    real = context.__init__
    def init(self, *args, **kwargs):
        interrupt()
        real(self, *args, **kwargs)
    context.__init__ = init
else:  # the first thing the live command does after its handlers are in
    real_setup = cli.setup_logging
    def setup(*args, **kwargs):
        interrupt()
        real_setup(*args, **kwargs)
    cli.setup_logging = setup
cli.main()
"""


@pytest.mark.parametrize("moment", ["import", "parsing", "command-start"])
def test_ctrl_c_at_start_up_exits_130_quietly(tmp_path, moment):
    """A Ctrl-C before `live` has installed its signal handlers (while the CLI is imported, while the command
    line is read) exits 130 with no traceback and no "Aborted!", as a stop does once they are in; nothing is
    created."""
    args = [sys.executable, "-c", EARLY_SIGINT, moment, *BASE, "-o", str(tmp_path / "s.mp4"), "--prompt", "a"]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=DEADLINE_S, cwd=tmp_path)
    assert proc.returncode == 130, proc.stderr
    assert "Aborted" not in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "s.mp4").exists()
    no_stray_files(tmp_path)
